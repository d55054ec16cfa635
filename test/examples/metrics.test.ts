import t, { type Test } from 'tap'
import { channel, tracingChannel } from 'node:diagnostics_channel'
import type { FastifyInstance } from 'fastify'
import { build } from '../../examples/metrics.js'
import { buildApp } from '../fixtures/app.js'
import { bodyOf, closeApp, rawGet, urlOf } from '../fixtures/http.js'
import { parsePrometheus, seriesOf, valueAt, type Sample } from '../fixtures/prometheus.js'
import { until } from '../fixtures/wait.js'

// The metrics example, scraped over real HTTP while streams are open: every number is checked against
// what the test made happen, and what the clients received.

const ES = { accept: 'text/event-stream' }
const trace = tracingChannel('fastify-sse-stream.stream')

/** A stream read as it arrives: its text so far, and a way to leave. */
async function follow (url: string, headers: Record<string, string> = {}) {
  const { request, response } = await rawGet(url, { ...ES, ...headers })
  let text = ''
  response.setEncoding('utf8')
  response.on('data', chunk => { text += chunk })
  return {
    get text () { return text },
    /** Events received: blocks with a data line. */
    get events () { return text.split('\n\n').filter(block => /^data:/m.test(block)).length },
    leave () { request.destroy() }
  }
}

/** GET /metrics of the app at `base`, parsed (strictly: a line it cannot read fails the test). */
async function scrape (base: string): Promise<Sample[]> {
  const response = await fetch(base + '/metrics')
  if (!/^text\/plain; version=0\.0\.4/.test(response.headers.get('content-type') ?? '')) {
    throw new Error(`not Prometheus text: ${response.status} ${response.headers.get('content-type')}`)
  }
  return parsePrometheus(await response.text())
}

/** The label sets of histogram `name` (from its _count samples), each with its count, sorted by route. */
function histogramCounts (samples: Sample[], name: string) {
  return seriesOf(samples, `${name}_count`).sort((a, b) => String(a.route).localeCompare(String(b.route)))
}

/** Each histogram series: cumulative buckets that never decrease, and a +Inf bucket equal to its count. */
function wellFormed (samples: Sample[], name: string): boolean {
  return samples.filter(sample => sample.name === `${name}_count`).every(({ labels, value }) => {
    const buckets = samples.filter(sample => sample.name === `${name}_bucket` &&
      Object.entries(labels).every(([key, label]) => sample.labels[key] === label)).map(sample => sample.value)
    return buckets.every((count, n) => n === 0 || count >= buckets[n - 1]!) && buckets.at(-1) === value
  })
}

t.test('scraped with streams open, /metrics says what happened: streams by route, subscribers, events, bytes, refusals, ends, replays, gaps', async t => {
  const app = await build({ sse: { maxStreams: 4, heartbeat: false }, intervalMs: 60_000 })
  t.teardown(() => closeApp(app))
  const base = await urlOf(app)

  // Two clocks (one event each: their next is a minute away), a news follower, and one that comes
  // back with an id the channel never gave: a replay, answered with a gap notice.
  const clocks = [await follow(base + '/clock'), await follow(base + '/clock')]
  const news = await follow(base + '/news')
  const stale = await follow(base + '/news', { 'last-event-id': '999999' })
  t.teardown(() => { for (const stream of [...clocks, news, stale]) stream.leave() })
  await until(() => clocks.every(clock => clock.events === 1) && stale.events === 1 && app.sse.stats().open === 4)
  t.match(stale.text, /event: sse-gap\n/)

  // A fifth stream is one past maxStreams: refused.
  t.match(await bodyOf((await rawGet(base + '/clock', ES)).response), /^: refused: max-streams\n/)

  // Plain requests: one publish (both followers get it), three reads of the time.
  const published = await fetch(base + '/news', {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ headline: 'one' })
  })
  t.equal(published.status, 202)
  for (let i = 0; i < 3; i++) t.equal((await fetch(base + '/api/time')).status, 200)
  await until(() => news.events === 1 && stale.events === 2, 2000, 'the headline to reach both followers')

  // Two clients leave, and a countdown runs to its end.
  clocks[1]!.leave()
  stale.leave()
  await until(() => app.sse.stats().ends['client-gone'] === 2, 2000, 'two clients gone')
  const countdown = await bodyOf((await rawGet(base + '/countdown', ES)).response)
  t.equal(countdown, 'data: 3\n\ndata: 2\n\ndata: 1\n\n')
  await until(() => app.sse.stats().ends['source-done'] === 1)

  const samples = await scrape(base)
  t.same(seriesOf(samples, 'sse_streams_open'), [{ route: 'GET /clock', value: 1 }, { route: 'GET /news', value: 1 }],
    'open streams by route pattern: the clock and the follower left')
  t.equal(valueAt(samples, 'sse_sources_open'), 2, 'their two sources')
  t.same(seriesOf(samples, 'sse_channel_subscribers'), [{ channel: 'news', value: 1 }], 'the follower that stayed')
  t.equal(valueAt(samples, 'sse_events_total'), 8, 'two clock events, three of the countdown, one gap notice, the headline twice')
  const received = [...clocks, news, stale].map(stream => stream.text).concat(countdown)
  t.equal(valueAt(samples, 'sse_bytes_total'), received.reduce((sum, text) => sum + Buffer.byteLength(text), 0),
    'every byte the streams\' clients received (a refusal is not a stream)')
  t.same(seriesOf(samples, 'sse_refusals_total'), [
    { reason: 'max-streams', value: 1 },
    { reason: 'client-streams', value: 0 },
    { reason: 'channel-subscribers', value: 0 },
    { reason: 'connect-rate', value: 0 }
  ], 'every reason, at 0 until it happens')
  t.same(Object.fromEntries(seriesOf(samples, 'sse_stream_ends_total').map(({ reason, value }) => [reason, value])), {
    'source-done': 1, 'client-gone': 2, error: 0, 'server-closing': 0, 'too-slow': 0, 'max-lifetime': 0, 'write-timeout': 0, expired: 0
  })
  t.equal(valueAt(samples, 'sse_replays_total'), 1, 'the follower that came with a Last-Event-ID')
  t.equal(valueAt(samples, 'sse_gaps_total'), 1, 'told of a gap, as its id was never given')

  t.same(histogramCounts(samples, 'sse_stream_duration_seconds'), [
    { route: 'GET /clock', reason: 'client-gone', value: 1 },
    { route: 'GET /countdown', reason: 'source-done', value: 1 },
    { route: 'GET /news', reason: 'client-gone', value: 1 }
  ], 'each ended stream, by route and reason; the open ones are not there yet')
  t.ok(wellFormed(samples, 'sse_stream_duration_seconds'), 'cumulative buckets up to +Inf = count')
  t.same(histogramCounts(samples, 'http_request_duration_seconds'), [
    { method: 'GET', route: '/api/time', status_code: '200', value: 3 },
    { method: 'POST', route: '/news', status_code: '202', value: 1 }
  ], 'request latency has the plain requests only: no stream, not even the refused one')
  t.ok(wellFormed(samples, 'http_request_duration_seconds'), 'cumulative buckets up to +Inf = count')
})

t.test('a stream that ends counts in the stream histogram once, with its reason; the scrape itself is a request', async t => {
  const app = await build({ intervalMs: 60_000 })
  t.teardown(() => closeApp(app))
  const base = await urlOf(app)
  const clock = await follow(base + '/clock')
  await until(() => clock.events === 1)
  const during = await scrape(base)
  t.same(histogramCounts(during, 'sse_stream_duration_seconds'), [], 'an open stream has no duration yet')
  clock.leave()
  await until(() => app.sse.stats().ends['client-gone'] === 1)
  const after = await scrape(base)
  t.same(histogramCounts(after, 'sse_stream_duration_seconds'), [{ route: 'GET /clock', reason: 'client-gone', value: 1 }])
  t.ok(valueAt(after, 'sse_stream_duration_seconds_sum', { route: 'GET /clock', reason: 'client-gone' }) > 0)
  t.same(histogramCounts(after, 'http_request_duration_seconds'), [
    { method: 'GET', route: '/metrics', status_code: '200', value: 1 }
  ], 'the first scrape, and nothing of the stream')
})

t.test('two apps in one process: each counts only its own streams (the diagnostics channels are process-wide)', async t => {
  const one = await build({ intervalMs: 60_000 })
  t.teardown(() => closeApp(one))
  const other = await build({ intervalMs: 60_000 })
  t.teardown(() => closeApp(other))
  t.equal(await bodyOf((await rawGet((await urlOf(one)) + '/countdown', ES)).response), 'data: 3\n\ndata: 2\n\ndata: 1\n\n')
  await until(() => one.sse.stats().ends['source-done'] === 1)
  t.same(histogramCounts(await scrape(await urlOf(one)), 'sse_stream_duration_seconds'),
    [{ route: 'GET /countdown', reason: 'source-done', value: 1 }])
  t.same(histogramCounts(await scrape(await urlOf(other)), 'sse_stream_duration_seconds'), [], 'none on the other app')
})

/** An app with only the plugin and a stream that runs until its client leaves. */
async function plainApp (t: Test): Promise<FastifyInstance> {
  const { app } = await buildApp(t)
  app.get('/held', { sse: true }, async function * (_request, reply) {
    yield 'hello'
    await new Promise(resolve => reply.sseContext.signal.addEventListener('abort', resolve))
  })
  return app
}

t.test('with nobody subscribed to its diagnostics channels the plugin traces nothing, and stats() still counts', async t => {
  const refusal = channel('fastify-sse-stream.refusal')
  t.equal(trace.start.hasSubscribers, false, 'no subscriber before the example is built')
  t.equal(refusal.hasSubscribers, false, 'nor to refusals')
  const app = await plainApp(t)
  const base = await urlOf(app)
  const held = await follow(base + '/held')
  await until(() => held.events === 1)

  // Subscribed only now: a stream that started unobserved has no trace, so its end publishes nothing.
  const ends: unknown[] = []
  const onEnd = (message: unknown) => { ends.push(message) }
  trace.asyncEnd.subscribe(onEnd)
  t.teardown(() => { trace.asyncEnd.unsubscribe(onEnd) })
  held.leave()
  await until(() => app.sse.stats().ends['client-gone'] === 1)
  t.same(ends, [], 'no asyncEnd for a stream that started with no subscriber')
  t.match(app.sse.stats(), { open: 0, events: 1, ends: { 'client-gone': 1 } }, 'stats counted it all the same')

  // A stream that starts while someone listens is traced from start to end.
  const traced = await follow(base + '/held')
  await until(() => traced.events === 1)
  traced.leave()
  await until(() => ends.length === 1, 2000, 'the traced stream\'s asyncEnd')
  t.match(ends[0], { route: 'GET /held', reason: 'client-gone', events: 1, durationMs: Number })
})

t.test('the example subscribes while its app lives and lets go when it closes', async t => {
  t.equal(trace.start.hasSubscribers, false, 'nobody listens before')
  const app = await build()
  t.equal(trace.start.hasSubscribers, true, 'the stream histogram listens')
  t.equal(trace.asyncEnd.hasSubscribers, true, 'to start and asyncEnd')
  t.equal(channel('fastify-sse-stream.refusal').hasSubscribers, true, 'refused streams are no requests either')
  await app.close()
  t.equal(trace.start.hasSubscribers, false, 'closed: the plugin publishes nothing again')
  t.equal(trace.asyncEnd.hasSubscribers, false, 'on any of the channels')
  t.equal(channel('fastify-sse-stream.refusal').hasSubscribers, false, 'refusals included')
})
