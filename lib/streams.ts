import type { FastifyRequest } from 'fastify'
import { clientGone } from './connection.js'
import type { StreamContext } from './context.js'
import { FlushScheduler } from './flush-scheduler.js'
import { HeartbeatClock } from './heartbeat.js'
import type { PumpOwner, StreamPump } from './pump.js'
import { withTimeout } from './timeout.js'

/**
 * Every stream of one Fastify instance, from the moment `reply.sse()` accepts a source: what
 * `app.close()` ends, where each stream's single end-of-stream log line is written, and the heartbeat
 * clock and flush rounds they share (per app: two apps in one process never pace each other).
 */
export class StreamRegistry implements PumpOwner {
  readonly heartbeats = new HeartbeatClock()
  readonly flushes = new FlushScheduler()
  #open = new Set<StreamPump>()
  /** Contexts a handler read (`reply.sseContext`) before any stream existed for them. */
  #waiting = new Set<StreamContext>()
  /** Set by `closeAll()`: how long a closing stream may take to settle before it is cut. */
  #closingGraceMs: number | undefined

  get size (): number {
    return this.#open.size
  }

  /** A new stream. One that arrives after `app.close()` began (its handler was still awaiting) ends at once. */
  add (pump: StreamPump): void {
    this.#open.add(pump)
    if (this.#closingGraceMs !== undefined) this.#close([pump], this.#closingGraceMs).catch(() => {})
  }

  finished (pump: StreamPump): void {
    this.#open.delete(pump)
    logEnd(pump)
  }

  /**
   * Abort `context` when its client leaves (or has left already) or the app closes, until a stream
   * takes it over (`unwatch`). For a handler that awaits something with the signal before it streams.
   */
  watch (context: StreamContext, res: Parameters<typeof clientGone>[0]): void {
    if (this.#closingGraceMs !== undefined || clientGone(res)) {
      context.abort()
      return
    }
    this.#waiting.add(context)
    res.once('close', () => {
      this.#waiting.delete(context)
      context.abort()
    })
  }

  /** A stream took `context` over: it aborts it from now on. */
  unwatch (context: StreamContext): void {
    this.#waiting.delete(context)
  }

  abandoned (pump: StreamPump): void {
    this.#open.delete(pump)
  }

  /** The open stream of the request that matches, if any (the test helper finds its own stream this way). */
  find (match: (request: FastifyRequest) => boolean): StreamPump | undefined {
    for (const pump of this.#open) if (match(pump.request)) return pump
    return undefined
  }

  /**
   * End every stream with 'server-closing' (and every stream that starts from now on), and wait for
   * their sources to finalize and their closing frames to leave, but no longer than `graceMs`: a
   * generator that ignores its signal, or a client that stopped reading, must not hold `app.close()`
   * hostage. The connections of clients that took nothing more by then are cut.
   */
  async closeAll (graceMs: number): Promise<void> {
    this.#closingGraceMs = graceMs
    for (const context of this.#waiting) context.abort()
    this.#waiting.clear()
    await this.#close([...this.#open], graceMs)
  }

  async #close (ending: StreamPump[], graceMs: number): Promise<void> {
    if (ending.length === 0) return
    for (const pump of ending) pump.end('server-closing')
    await withTimeout(Promise.all(ending.map(pump => pump.settled())).then(() => {}), graceMs, () => {})
    for (const pump of ending) pump.cut()
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
