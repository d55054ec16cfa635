import type { SseContext } from './context.js'
import { describe } from './describe.js'
import { FST_SSE_INVALID_SOURCE } from './errors.js'

// A string is Iterable<string>, yet streaming it character by character is never what was meant and
// openSource refuses it: `charAt?: never` keeps strings out at compile time too (no other iterable has it).
type Iterables<T> = AsyncIterable<T> | (Iterable<T> & { readonly charAt?: never })

/** Anything `reply.sse()` streams: an iterable, or a function of the stream's context returning one. */
export type SseSource<T = unknown> =
  | Iterables<T>
  | ((ctx: SseContext) => Iterables<T> | PromiseLike<Iterables<T>>)

export type SseIterator = AsyncIterator<unknown> | Iterator<unknown>

/** What a source error message says it got, with the fix for the usual mistakes. */
export function describeSource (value: unknown): string {
  if (typeof value === 'string') return 'a string (wrap it: [text] or { data: text })'
  if (typeof value === 'object' && value !== null) return 'an object without Symbol.asyncIterator or Symbol.iterator'
  return describe(value)
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
  if (iterator === null) throw new FST_SSE_INVALID_SOURCE(describeSource(iterable))
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
