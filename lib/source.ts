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

// A string is Iterable<string>, yet streaming it character by character is never what was meant and
// openSource refuses it: `charAt?: never` keeps strings out at compile time too (no other iterable has it).
/**
 * The context a source function is given. Its AbortController is made only when `signal` is read:
 * a stream whose source never asks for it does not pay for one.
 */
export class StreamContext implements SseContext {
  readonly lastEventId: string | undefined
  readonly request: FastifyRequest
  #controller: AbortController | undefined
  #aborted = false

  constructor (lastEventId: string | undefined, request: FastifyRequest) {
    this.lastEventId = lastEventId
    this.request = request
  }

  get signal (): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController()
      if (this.#aborted) this.#controller.abort()
    }
    return this.#controller.signal
  }

  /** The stream is over: abort the signal, now or whenever it is first read. */
  abort (): void {
    this.#aborted = true
    this.#controller?.abort()
  }
}

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

/** Open a source: call it with the context if it is a function, then take its iterator. */
export async function openSource (source: SseSource, ctx: SseContext): Promise<SseIterator> {
  const iterable = typeof source === 'function' ? await source(ctx) : source
  const iterator = iteratorOrNull(iterable)
  if (iterator === null) throw new FST_SSE_INVALID_SOURCE(describe(iterable))
  return iterator
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
