import type { FastifyRequest } from 'fastify'
import { Admission, type RefusalReason } from './admission.js'
import { clientGone } from './connection.js'
import type { StreamContext } from './context.js'
import { refusalChannel, routeOf, streamTrace, type StreamTraceContext } from './diagnostics.js'
import { FlushScheduler } from './flush-scheduler.js'
import { HeartbeatClock } from './heartbeat.js'
import { SharedRuns } from './shared-run.js'
import type { SseSettings } from './options.js'
import type { EndReason, PumpOwner, StreamPump } from './pump.js'
import { StreamTotals, type SseStats } from './stats.js'
import { withTimeout } from './timeout.js'

/** What the registry keeps of a stream, on it: its client's key, its trace when traced. */
interface Registration {
  readonly clientKey: string | undefined
  readonly trace: StreamTraceContext | undefined
}

/**
 * Every stream of one Fastify instance, from the moment `reply.sse()` accepts a source: what
 * `app.close()` ends, where each stream's single end-of-stream log line is written, and the heartbeat
 * clock and flush rounds they share (per app: two apps in one process never pace each other).
 */
export class StreamRegistry implements PumpOwner {
  readonly heartbeats = new HeartbeatClock()
  readonly flushes = new FlushScheduler()
  readonly runs = new SharedRuns()
  readonly admission: Admission
  readonly totals = new StreamTotals()
  #open = new Set<StreamPump>()
  /** Contexts a handler read (`reply.sseContext`) before any stream existed for them. */
  #waiting = new Set<StreamContext>()
  /** Set by `closeAll()`: how long a closing stream may take to settle before it is cut. */
  #closingGraceMs: number | undefined

  constructor (settings: SseSettings) {
    this.admission = new Admission(settings)
  }

  /** Streams whose source is not finalized yet (open, opening, or ending). */
  get size (): number {
    return this.#open.size
  }

  /**
   * A new stream of the client `clientKey` (see `Admission`). One that arrives after `app.close()` began
   * (its handler was still awaiting) ends at once.
   */
  add (pump: StreamPump, clientKey: string | undefined): void {
    let trace: StreamTraceContext | undefined
    if (streamTrace.hasSubscribers) {
      trace = { request: pump.request, route: routeOf(pump.request), startedAt: Date.now() }
      streamTrace.tracePromise(() => pump.done, trace).catch(() => {})
    }
    this.#open.add(pump)
    // Most streams have neither a client key nor a trace: they carry nothing more.
    if (clientKey !== undefined || trace !== undefined) pump.registration = { clientKey, trace } satisfies Registration
    this.admission.opened(clientKey)
    if (this.#closingGraceMs !== undefined) this.#close([pump], this.#closingGraceMs).catch(() => {})
  }

  finished (pump: StreamPump): void {
    const { totals } = this
    totals.events += pump.events
    totals.bytes += pump.bytes
    totals.ends[pump.reason!]++
    const trace = this.#forget(pump)
    const summary = summaryOf(pump)
    // The trace's end carries what the log line says.
    if (trace !== undefined) Object.assign(trace, summary)
    if (pump.reason === 'error') {
      pump.request.log.error({ ...summary, err: pump.error }, 'sse stream ended')
    } else {
      pump.request.log.info(summary, 'sse stream ended')
    }
  }

  /** A stream refused by a limit: counted, logged once, published. */
  refused (request: FastifyRequest, reason: RefusalReason, retryMs: number): void {
    this.totals.refusals[reason]++
    const route = routeOf(request)
    request.log.warn({ reason, route, retryMs }, 'sse stream refused')
    if (refusalChannel.hasSubscribers) refusalChannel.publish({ request, route, reason })
  }

  /** Streams by route, events and bytes so far (ended and open), ends and refusals. */
  stats (): Omit<SseStats, 'channels' | 'replays' | 'gaps'> {
    const totals = this.totals.snapshot()
    const routes: Record<string, number> = {}
    let open = 0
    for (const pump of this.#open) {
      totals.events += pump.events
      totals.bytes += pump.bytes
      if (pump.ended) continue
      open++
      const route = routeOf(pump.request)
      routes[route] = (routes[route] ?? 0) + 1
    }
    return { open, sources: this.#open.size, routes, ...totals }
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
    this.#forget(pump)
  }

  #forget (pump: StreamPump): StreamTraceContext | undefined {
    this.#open.delete(pump)
    const registration = pump.registration as Registration | null
    if (registration === null) return undefined
    this.admission.closed(registration.clientKey)
    return registration.trace
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

/** How a stream ended, once: for its log line and its trace. */
function summaryOf (pump: StreamPump): { durationMs: number, events: number, bytes: number, reason: EndReason } {
  return {
    durationMs: Math.round(pump.endedAt - pump.startedAt),
    events: pump.events,
    bytes: pump.bytes,
    reason: pump.reason!
  }
}

/** Where the plugin keeps its registry on the instance (read by the test helper). */
export const kStreams = Symbol.for('fastify-sse-stream.streams')
