import type { FastifyRequest } from 'fastify'
import type { StreamPump } from './pump.js'

interface OpenStream {
  readonly pump: StreamPump
  readonly request: FastifyRequest
}

/**
 * Every open stream of one Fastify instance: what `app.close()` ends, and where each stream's
 * single end-of-stream log line is written.
 */
export class StreamRegistry {
  #open = new Set<OpenStream>()

  get size (): number {
    return this.#open.size
  }

  add (pump: StreamPump, request: FastifyRequest): void {
    const entry = { pump, request }
    this.#open.add(entry)
    pump.done.then(() => {
      this.#open.delete(entry)
      logEnd(pump, request)
    })
  }

  /** The open stream of the request that matches, if any (the test helper finds its own stream this way). */
  find (match: (request: FastifyRequest) => boolean): StreamPump | undefined {
    for (const entry of this.#open) if (match(entry.request)) return entry.pump
    return undefined
  }

  /**
   * End every stream with 'server-closing' and wait for their sources to finalize, but no longer
   * than `graceMs`: a generator that ignores its signal must not hold `app.close()` hostage.
   */
  async closeAll (graceMs: number): Promise<void> {
    const pending: Promise<void>[] = []
    for (const { pump } of this.#open) {
      pump.end('server-closing')
      pending.push(pump.done)
    }
    if (pending.length === 0) return
    let timer: NodeJS.Timeout | undefined
    const grace = new Promise<void>(resolve => { timer = setTimeout(resolve, graceMs) })
    await Promise.race([Promise.all(pending), grace])
    clearTimeout(timer)
  }
}

function logEnd (pump: StreamPump, request: FastifyRequest): void {
  const summary = {
    durationMs: Math.round(pump.endedAt - pump.startedAt),
    events: pump.events,
    bytes: pump.bytes,
    reason: pump.reason
  }
  if (pump.reason === 'error') {
    request.log.error({ ...summary, err: pump.error }, 'sse stream ended')
  } else {
    request.log.info(summary, 'sse stream ended')
  }
}

/** Where the plugin keeps its registry on the instance (read by the test helper). */
export const kStreams = Symbol.for('fastify-sse-stream.streams')
