import type { FastifyRequest } from 'fastify'
import { FST_SSE_INVALID_SOURCE } from './errors.js'

/** What a source function is given. */
export interface SseContext {
  /** Aborts when the stream ends for any reason: client gone, server closing, source error. */
  readonly signal: AbortSignal
  /** The `Last-Event-ID` request header, or undefined. */
  readonly lastEventId: string | undefined
  readonly request: FastifyRequest
}

/** Where a stream's signal keeps its controller: whoever can reach the signal can have it aborted. */
const kController = Symbol('fastify-sse-stream.controller')
type OwnedSignal = AbortSignal & { [kController]: AbortController }

/**
 * The context a source function is given. The AbortController is made only when `signal` is read,
 * and held weakly: a signal that nothing else holds any more (a channel subscription lets go of it
 * once the stream adopts it) is collected, since no one is left to see it abort. One that is still
 * held somewhere (a timer, a fetch) is aborted when the stream ends.
 */
export class StreamContext implements SseContext {
  readonly lastEventId: string | undefined
  readonly request: FastifyRequest
  #signal: WeakRef<OwnedSignal> | undefined
  #aborted = false

  constructor (lastEventId: string | undefined, request: FastifyRequest) {
    this.lastEventId = lastEventId
    this.request = request
  }

  get signal (): AbortSignal {
    let signal = this.#signal?.deref()
    if (signal === undefined) {
      const controller = new AbortController()
      if (this.#aborted) controller.abort()
      signal = Object.assign(controller.signal, { [kController]: controller })
      this.#signal = new WeakRef(signal)
    }
    return signal
  }

  /** The stream is over: abort the signal, now or whenever it is first read. */
  abort (): void {
    this.#aborted = true
    this.#signal?.deref()?.[kController].abort()
  }
}

/**
 * A source that can hand its values to the stream as they come instead of being pulled one promise
 * at a time (a channel subscription does): no pending promise while idle, no await per event.
 * After `[kAdopt](sink)` the stream owns the source's end: it closes it with `return()`.
 */
export const kAdopt = Symbol('fastify-sse-stream.adopt')
/** The sink said it was full; it can take values again. */
export const kResume = Symbol('fastify-sse-stream.resume')

export interface StreamSink {
  /** One value for the stream. `false`: the stream cannot take more now; hold the rest until `[kResume]()`. */
  deliver (value: unknown): boolean
  /** The source is over, normally or with an error. */
  finish (error?: unknown): void
}

export interface AdoptableSource {
  [kAdopt] (sink: StreamSink): void
  [kResume] (): void
}

export function isAdoptable (iterator: unknown): iterator is AdoptableSource {
  return typeof (iterator as Partial<AdoptableSource>)[kAdopt] === 'function'
}

// A string is Iterable<string>, yet streaming it character by character is never what was meant and
// openSource refuses it: `charAt?: never` keeps strings out at compile time too (no other iterable has it).
type Iterables<T> = AsyncIterable<T> | (Iterable<T> & { readonly charAt?: never })

/** Anything `reply.sse()` streams: an iterable, or a function of the stream's context returning one. */
export type SseSource<T = unknown> =
  | Iterables<T>
  | ((ctx: SseContext) => Iterables<T> | PromiseLike<Iterables<T>>)

export type SseIterator = AsyncIterator<unknown> | Iterator<unknown>

function describe (value: unknown): string {
  if (value === null) return 'null'
  if (typeof value === 'string') return 'a string (wrap it: [text] or { data: text })'
  return typeof value === 'object' ? 'an object without Symbol.asyncIterator or Symbol.iterator' : typeof value
}

function iteratorOrNull (value: unknown): SseIterator | null {
  // A string is iterable, but streaming it character by character is never what was meant.
  if (value === null || typeof value !== 'object') return null
  const source = value as Partial<AsyncIterable<unknown> & Iterable<unknown>>
  const asyncIterator = source[Symbol.asyncIterator]
  if (typeof asyncIterator === 'function') return asyncIterator.call(source)
  const iterator = source[Symbol.iterator]
  if (typeof iterator === 'function') return iterator.call(source)
  return null
}

/** Whether `reply.sse()` can stream this value, before anything is called or opened. */
export function isSource (value: unknown): value is SseSource {
  return typeof value === 'function' || (value !== null && typeof value === 'object' &&
    (Symbol.asyncIterator in value || Symbol.iterator in value))
}

function iteratorOf (iterable: unknown): SseIterator {
  const iterator = iteratorOrNull(iterable)
  if (iterator === null) throw new FST_SSE_INVALID_SOURCE(describe(iterable))
  return iterator
}

/**
 * Open a source without waiting when nothing needs waiting for: the iterator at once (or a throw),
 * or a promise of it when the source function returned one. Lets `reply.sse()` take over the response
 * in the same tick for every synchronous source.
 */
export function openSourceNow (source: SseSource, ctx: SseContext): SseIterator | Promise<SseIterator> {
  if (typeof source !== 'function') return iteratorOf(source)
  const opened = source(ctx)
  if (typeof (opened as Partial<PromiseLike<unknown>>)?.then === 'function') {
    return Promise.resolve(opened).then(iteratorOf)
  }
  return iteratorOf(opened)
}

/** Open a source: call it with the context if it is a function, then take its iterator. */
export async function openSource (source: SseSource, ctx: SseContext): Promise<SseIterator> {
  return openSourceNow(source, ctx)
}

/** Drop a source that will never be streamed, letting a generator that already ran clean up. */
export async function discardSource (source: unknown): Promise<void> {
  if (typeof source !== 'object' || source === null) return
  const iterator = source as Partial<AsyncIterator<unknown>>
  // Only an iterator (a generator object) holds resources; a plain iterable was never started.
  if (typeof iterator.next === 'function' && typeof iterator.return === 'function') {
    await iterator.return()
  }
}

export { describe as describeSource }
