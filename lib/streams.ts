import type { FastifyRequest } from 'fastify'
import { HeartbeatClock } from './heartbeat.js'
import type { PumpOwner, StreamPump } from './pump.js'

/**
 * Every open stream of one Fastify instance: what `app.close()` ends, where each stream's single
 * end-of-stream log line is written, and the heartbeat clock they share.
 */
export class StreamRegistry implements PumpOwner {
  readonly heartbeats = new HeartbeatClock()
  #open = new Set<StreamPump>()

  get size (): number {
    return this.#open.size
  }

  add (pump: StreamPump): void {
    this.#open.add(pump)
  }

  finished (pump: StreamPump): void {
    this.#open.delete(pump)
    logEnd(pump)
  }

  /** The open stream of the request that matches, if any (the test helper finds its own stream this way). */
  find (match: (request: FastifyRequest) => boolean): StreamPump | undefined {
    for (const pump of this.#open) if (match(pump.request)) return pump
    return undefined
  }

  /**
   * End every stream with 'server-closing' and wait for their sources to finalize, but no longer
   * than `graceMs`: a generator that ignores its signal must not hold `app.close()` hostage.
   */
  async closeAll (graceMs: number): Promise<void> {
    const pending: Promise<void>[] = []
    for (const pump of this.#open) {
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

function logEnd (pump: StreamPump): void {
  const { request } = pump
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
