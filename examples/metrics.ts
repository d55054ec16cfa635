// metrics: the plugin's numbers for Prometheus, and stream durations kept out of request latency.
//
//   npx tsx examples/metrics.ts                  # listens on http://localhost:3000 (PORT to change)
//   curl -N http://localhost:3000/clock          # a stream, in another terminal
//   curl http://localhost:3000/metrics
//
// Three sources, none of which costs anything per event:
//   - `app.sse.stats()`, read when Prometheus scrapes (prom-client `collect()` callbacks): open streams
//     by route, subscribers by channel, events and bytes written, refusals and ends by reason, replays
//     and gap notices. The plugin keeps these counters anyway; a scrape only copies them.
//   - the TracingChannel `fastify-sse-stream.stream` of `node:diagnostics_channel`: its `asyncEnd`
//     carries each stream's route, end reason and duration, for a histogram of stream durations. The
//     plugin publishes only while someone subscribes: without this example, tracing costs nothing.
//   - an `onResponse` hook, for the usual request-duration histogram, minus the streams.
//
// Why streams stay out of request latency: a request histogram's buckets end around 10 s, so a stream
// that lasts an hour lands in +Inf and adds 3600 s to the sum. Once more than 1 % of requests are
// streams, p99 becomes "the largest bucket" whatever the API does, the average grows with every
// stream that ends, and an alert on latency fires because browsers stayed connected, which is what
// they are meant to do. So a stream's request is not a request here: its duration goes to
// `sse_stream_duration_seconds`, with buckets from a second to hours, labelled with why it ended.
//
// Which replies are streams is told by the plugin itself, on the same channels: a `start` for every
// stream it accepts, and `fastify-sse-stream.refusal` for every one it refuses. That holds for
// `{ sse: true }` routes and `reply.sse()` alike, with no flag to remember on each route. (The
// content-type cannot tell it: a stream writes its head itself, past Fastify's `reply.getHeader()`.)
import { channel, tracingChannel } from 'node:diagnostics_channel'
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import Fastify, { type FastifyInstance, type FastifyRequest, type FastifyServerOptions } from 'fastify'
import fp from 'fastify-plugin'
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import ssePlugin, { type SsePluginOptions, type SseStats, type StreamTraceContext } from '../lib/index.js'

export interface MetricsOptions {
  /** Where Prometheus scrapes. @default '/metrics' */
  path?: string
}

/** Stream durations in seconds: from a reconnecting client's second to a dashboard left open all day. */
const STREAM_BUCKETS = [1, 5, 15, 60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600]

/** What a scrape reads: the plugin's stats, taken anew by each metric (a copy of counters it keeps anyway). */
type Read<T> = (stats: SseStats) => T

/** A gauge of one number of the stats. */
function gauge (registry: Registry, name: string, help: string, app: FastifyInstance, read: Read<number>): Gauge {
  return new Gauge({ name, help, registers: [registry], collect () { this.set(read(app.sse.stats())) } })
}

/** A gauge by `label` (route, channel): set anew at each scrape, so a route or channel with none is gone. */
function gaugeBy (registry: Registry, name: string, help: string, label: string, app: FastifyInstance,
  read: Read<Record<string, number>>): Gauge {
  return new Gauge({
    name,
    help,
    labelNames: [label],
    registers: [registry],
    collect () {
      this.reset()
      for (const [value, count] of Object.entries(read(app.sse.stats()))) this.set({ [label]: value }, count)
    }
  })
}

/** A counter whose total the plugin keeps: a scrape copies it (prom-client counters only add, hence reset). */
function counter (registry: Registry, name: string, help: string, app: FastifyInstance, read: Read<number>): Counter {
  return new Counter({
    name,
    help,
    registers: [registry],
    collect () {
      this.reset()
      this.inc(read(app.sse.stats()))
    }
  })
}

/** Counters by reason: every reason is there from the start, at 0, so rate() and alerts see a series at once. */
function counterBy (registry: Registry, name: string, help: string, app: FastifyInstance,
  read: Read<Record<string, number>>): Counter {
  return new Counter({
    name,
    help,
    labelNames: ['reason'],
    registers: [registry],
    collect () {
      this.reset()
      for (const [reason, count] of Object.entries(read(app.sse.stats()))) this.inc({ reason }, count)
    }
  })
}

/** Gauges and counters read from `app.sse.stats()` when the registry is scraped. */
function statsMetrics (app: FastifyInstance, registry: Registry): void {
  gaugeBy(registry, 'sse_streams_open', 'Streams open, by route pattern', 'route', app, stats => stats.routes)
  gauge(registry, 'sse_sources_open', 'Stream sources not finalized yet (open streams, and ended ones still closing theirs)',
    app, stats => stats.sources)
  // A series per channel: fine for a few named channels; with a channel per user, drop this one.
  gaugeBy(registry, 'sse_channel_subscribers', 'Subscribers on this app, by channel', 'channel', app, stats => stats.channels)
  counter(registry, 'sse_events_total', 'Events written by every stream', app, stats => stats.events)
  counter(registry, 'sse_bytes_total', 'Bytes of SSE text written by every stream, before compression', app, stats => stats.bytes)
  counterBy(registry, 'sse_refusals_total', 'Streams refused, by the limit that refused them', app, stats => stats.refusals)
  counterBy(registry, 'sse_stream_ends_total', 'Streams ended, by why', app, stats => stats.ends)
  counter(registry, 'sse_replays_total', 'Channel subscriptions that replayed history from a Last-Event-ID', app,
    stats => stats.replays)
  counter(registry, 'sse_gaps_total', 'Notices of lost events (sse-gap) handed to subscribers', app, stats => stats.gaps)
}

/**
 * Stream durations from the plugin's TracingChannel, and which requests are streams. The channels are
 * process-wide: only streams of this app's server count. Unsubscribed when the app closes, so the
 * plugin stops publishing.
 */
function streamTracing (app: FastifyInstance, registry: Registry): WeakSet<FastifyRequest> {
  const streams = new WeakSet<FastifyRequest>()
  const durations = new Histogram({
    name: 'sse_stream_duration_seconds',
    help: 'How long streams lasted, by route pattern and why they ended',
    labelNames: ['route', 'reason'],
    buckets: STREAM_BUCKETS,
    registers: [registry]
  })
  const ours = (request: FastifyRequest) => request.server.server === app.server
  const trace = tracingChannel<unknown, StreamTraceContext>('fastify-sse-stream.stream')
  const onStart = (message: unknown) => {
    const { request } = message as StreamTraceContext
    if (ours(request)) streams.add(request)
  }
  const onEnd = (message: unknown) => {
    const { request, route, reason, durationMs } = message as StreamTraceContext
    // No reason: the stream never started (its source failed to open, Fastify answered the error).
    if (ours(request) && reason !== undefined) durations.observe({ route, reason }, durationMs! / 1000)
  }
  // `{ request, route, reason }`: a refused stream is no request either.
  const refusals = channel('fastify-sse-stream.refusal')
  const subscriptions = [[trace.start, onStart], [trace.asyncEnd, onEnd], [refusals, onStart]] as const
  for (const [published, listener] of subscriptions) published.subscribe(listener)
  app.addHook('onClose', async () => {
    for (const [published, listener] of subscriptions) published.unsubscribe(listener)
  })
  return streams
}

/** The usual request-duration histogram, without the requests that were streams. */
function requestDurations (app: FastifyInstance, registry: Registry, streams: WeakSet<FastifyRequest>): void {
  const durations = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'How long requests took, streams excepted (see sse_stream_duration_seconds)',
    labelNames: ['method', 'route', 'status_code'],
    registers: [registry]
  })
  app.addHook('onResponse', async (request, reply) => {
    if (streams.has(request)) return
    // The route pattern, never the URL: ids in paths would make a series per id.
    const route = request.routeOptions.url ?? '(no route)'
    durations.observe({ method: request.method, route, status_code: reply.statusCode }, reply.elapsedTime / 1000)
  })
}

/** `/metrics` in Prometheus text, for every route of the app (fastify-plugin: its hook sees them all). */
export const metrics = fp<MetricsOptions>(async function metrics (app, opts) {
  // A registry per app, not prom-client's global one: two apps in one process (tests) never mix.
  const registry = new Registry()
  statsMetrics(app, registry)
  requestDurations(app, registry, streamTracing(app, registry))
  app.get(opts.path ?? '/metrics', async (_request, reply) => {
    reply.type(registry.contentType)
    return await registry.metrics()
  })
}, { fastify: '5.x', name: 'sse-metrics', dependencies: ['fastify-sse-stream'] })

export interface BuildOptions extends MetricsOptions {
  logger?: FastifyServerOptions['logger']
  /** The plugin's options: `maxStreams` and friends show up in `sse_refusals_total`. */
  sse?: SsePluginOptions
  /** Pause between the clock's events, in ms. @default 1000 */
  intervalMs?: number
}

/**
 * Something to measure: a JSON route (`/api/time`), a stream that runs until its client leaves
 * (`/clock`), one that ends by itself (`/countdown`), and a channel (`GET /news` to follow it,
 * `POST /news` to publish).
 */
export async function build (opts: BuildOptions = {}): Promise<FastifyInstance> {
  const intervalMs = opts.intervalMs ?? 1000
  const app = Fastify({ logger: opts.logger ?? false })
  await app.register(ssePlugin, opts.sse ?? {})
  await app.register(metrics, opts)

  app.get('/api/time', async () => ({ now: new Date().toISOString() }))
  app.get('/clock', { sse: true }, async function * (_request, reply) {
    const { signal } = reply.sseContext
    while (!signal.aborted) {
      yield new Date().toISOString()
      await sleep(intervalMs, undefined, { signal }).catch(() => {})
    }
  })
  app.get('/countdown', { sse: true }, async function * () {
    yield * ['3', '2', '1']
  })
  const news = app.sse.channel<{ headline: string }>('news')
  app.get('/news', (request, reply) => reply.sse(news.subscribe({ lastEventId: request.lastEventId })))
  app.post<{ Body: { headline: string } }>('/news', {
    schema: { body: { type: 'object', required: ['headline'], properties: { headline: { type: 'string' } } } }
  }, async (request, reply) => {
    reply.code(202)
    return { id: await news.publish({ headline: request.body.headline }) }
  })
  return app
}

// Importing this file starts nothing; run as a script, it listens.
if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const app = await build({ logger: { level: 'info' }, sse: { maxStreams: 100 } })
  await app.listen({ port: Number(process.env.PORT ?? 3000), host: process.env.HOST ?? 'localhost' })
}
