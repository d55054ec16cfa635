import type { FastifyBaseLogger } from 'fastify'
import { closeSource } from './close-source.js'

// A source that hands its values to the stream as they come, instead of being pulled one promise at a
// time (a channel subscription does): no pending promise while idle, no await per event. After
// `[kAdopt](sink)` the stream owns the source's end: it closes it with `return()`.

export const kAdopt = Symbol('fastify-sse-stream.adopt')
/** The sink said it was full; it can take values again. */
export const kResume = Symbol('fastify-sse-stream.resume')

/** Where a source's values go: the stream pump. */
export interface StreamSink {
  /** One value for the stream. `false`: the stream cannot take more now; hold the rest until resumed. */
  deliver (value: unknown): boolean
  /** The source is over, normally or with an error. */
  finish (error?: unknown): void
  /** The source gave up on this stream: it fell too far behind (a channel subscriber's queue overflowed). */
  tooSlow (): void
}

export interface AdoptableSource {
  [kAdopt] (sink: StreamSink): void
  [kResume] (): void
}

export function isAdoptable (iterator: unknown): iterator is AdoptableSource {
  return typeof (iterator as Partial<AdoptableSource>)[kAdopt] === 'function'
}

/** How a pump is fed, whichever way the source works: started once, resumed after a full socket, closed once. */
export interface Feeder {
  start (): void
  /** The sink has room again. */
  resume (): void
  /** Finalize the source. Resolves once it is (a generator's `finally` has run); never rejects. */
  close (): Promise<void>
}

/** Feeds a pump from an adoptable source: the source pushes, the pump tells it when to hold on. */
export class AdoptedFeeder implements Feeder {
  readonly #source: AdoptableSource
  readonly #sink: StreamSink
  readonly #log: FastifyBaseLogger

  constructor (source: AdoptableSource, sink: StreamSink, log: FastifyBaseLogger) {
    this.#source = source
    this.#sink = sink
    this.#log = log
  }

  start (): void {
    this.#source[kAdopt](this.#sink)
  }

  resume (): void {
    this.#source[kResume]()
  }

  close (): Promise<void> {
    return closeSource(this.#source, this.#log)
  }
}
