import type { FastifyBaseLogger } from 'fastify'

/**
 * Finalize a source with `return()`, so a generator's `finally` runs. Resolves once it has; a
 * `finally` that throws is logged, never rethrown: the stream it fed is already over.
 * A value without `next` and `return` (an iterable never opened) holds nothing and is left alone.
 */
export async function closeSource (source: unknown, log: FastifyBaseLogger): Promise<void> {
  if (typeof source !== 'object' || source === null) return
  const iterator = source as Partial<Iterator<unknown> | AsyncIterator<unknown>>
  if (typeof iterator.next !== 'function' || typeof iterator.return !== 'function') return
  try {
    await iterator.return()
  } catch (err) {
    log.warn({ err }, 'sse source threw while being closed')
  }
}
