import t, { type Test } from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import type { Page } from 'playwright-core'
import type { SsePluginOptions } from '../../lib/index.js'
import { buildApp } from '../fixtures/app.js'
import { launchChromium } from '../fixtures/chromium.js'
import { urlOf } from '../fixtures/http.js'
import { logsOf, type LogLine } from '../fixtures/logs.js'
import { closeSource, openSources, servePage, sourceStates, untilSources, type SourceState } from '../fixtures/page-streams.js'
import { until } from '../fixtures/wait.js'

// Why a refused stream is answered 200 by default: a browser's EventSource reconnects by itself after
// a stream that ends, at the `retry:` it was told, but fails for good on any other status (WHATWG HTML,
// "fail the connection"). Shown in Chromium with two slots (maxStreams: 2) and three EventSources:
// three streams and the page's own connection stay under the six HTTP/1.1 connections Chromium allows
// an origin, so only the limit stands between the third and the server.

const CONNECTING = 0
const OPEN = 1
const CLOSED = 2

interface TickingApp { app: FastifyInstance, logs: LogLine[], url: string, arrivals: Map<string, number> }

/** The page, and /ticks: a tick every 50 ms until its client leaves. `arrivals`: when each request came, by id. */
async function tickingApp (t: Test, options: SsePluginOptions): Promise<TickingApp> {
  const { app, logs } = await buildApp(t, { maxStreams: 2, ...options })
  const arrivals = new Map<string, number>()
  app.addHook('onRequest', async request => { arrivals.set(request.id, performance.now()) })
  servePage(app)
  app.get('/ticks', { sse: true }, async function * (_request, reply) {
    const { signal } = reply.sseContext
    for (let i = 0; !signal.aborted; i++) {
      yield String(i)
      await sleep(50)
    }
  })
  return { app, logs, url: await urlOf(app), arrivals }
}

/** A page of `url` with three EventSources on /ticks, once two of them receive ticks: which are they, and the third. */
async function threeSources (t: Test, url: string): Promise<{ page: Page, served: number[], refused: number } | null> {
  const browser = await launchChromium(t)
  if (browser === null) return null
  const page = await browser.newPage()
  await page.goto(url + '/')
  await openSources(page, '/ticks', 3)
  const receiving = (states: SourceState[]) => states.flatMap((state, index) => state.received.length >= 2 ? [index] : [])
  const states = await untilSources(page, states => receiving(states).length === 2, 'two EventSources to receive ticks')
  const served = receiving(states)
  return { page, served, refused: [0, 1, 2].find(index => !served.includes(index))! }
}

t.test('an EventSource refused at maxStreams comes back by itself at the jittered retry: pace, and is served once a slot frees up', async t => {
  t.setTimeout(30_000)
  const { app, logs, url, arrivals } = await tickingApp(t, { refusalRetry: 200 })
  const opened = await threeSources(t, url)
  if (opened === null) return
  const { page, served, refused } = opened

  await until(() => app.sse.stats().refusals['max-streams'] >= 2, 5000, 'the third to be refused, and to come back')
  const first = app.sse.stats().refusals['max-streams']
  // Watched for 2 s: each refusal opens it for an instant and ends, then it waits, CONNECTING, and tries again.
  const seen: number[] = []
  for (const deadline = Date.now() + 2000; Date.now() < deadline; await sleep(50)) {
    seen.push((await sourceStates(page))[refused]!.readyState)
  }
  const later = app.sse.stats().refusals['max-streams']
  // Each retry: is 200 to 400 ms, so 2 s hold 5 to 10 attempts; a client reconnecting at once would make hundreds.
  t.ok(later - first >= 2 && later - first <= 12, `${later - first} refusals in 2 s: it keeps coming back, not in a tight loop`)
  t.notOk(seen.includes(CLOSED), 'refused, it never failed for good')
  t.ok(seen.filter(state => state === CONNECTING).length > seen.length / 2,
    `it spends its time CONNECTING (${seen.filter(state => state === CONNECTING).length} of ${seen.length} looks)`)
  const state = (await sourceStates(page))[refused]!
  t.same(state.received, [], 'a refusal carries no event')
  t.ok(state.errors >= 2, `the page saw each refusal end the stream (${state.errors} error events) and reconnected`)

  // Every refusal told the client how long to wait; the next one came no sooner. Measured from the
  // arrival of each request, which precedes its answer: the gap can only come out longer than the wait.
  const refusals = logsOf(logs, 'sse stream refused')
  t.ok(refusals.every(line => line.reason === 'max-streams' && line.route === 'GET /ticks'), 'each refusal logged with its reason and route')
  const told = refusals.map(line => line.retryMs as number)
  t.ok(told.every(ms => ms >= 200 && ms < 400), `every retry: within [200, 400): ${told.join(', ')}`)
  const arrived = refusals.map(line => arrivals.get(line.reqId!)!)
  const waited = arrived.slice(1).map((at, n) => Math.round(at - arrived[n]!))
  t.ok(waited.every((ms, n) => ms >= told[n]!), `the browser waited as told each time: ${waited.join(', ')} ms`)
  t.ok(new Set(told).size > 1, 'the waits differ: a crowd refused together spreads out')

  await closeSource(page, served[0]!)
  const states = await untilSources(page, states => states[refused]!.readyState === OPEN && states[refused]!.received.length >= 2,
    'the refused EventSource to be served')
  t.same(states[refused]!.received.slice(0, 2), ['0', '1'], 'served from its start, like any new stream')
  t.equal(states[served[0]!]!.readyState, CLOSED, 'the one the page closed')
  t.equal(states[served[1]!]!.readyState, OPEN, 'the other goes on')
  await until(() => app.sse.stats().open === 2, 5000, 'two streams open again')
  t.same(app.sse.stats().routes, { 'GET /ticks': 2 }, 'stats show the two')
  const refusedInAll = app.sse.stats().refusals['max-streams']
  await sleep(600)
  t.equal(app.sse.stats().refusals['max-streams'], refusedInAll, 'served, it stops coming back')
})

t.test('with refuseWith: 503 the refused EventSource fails for good: CLOSED, never back, even once a slot frees up', async t => {
  t.setTimeout(30_000)
  const { app, url } = await tickingApp(t, { refusalRetry: 200, refuseWith: 503 })
  const opened = await threeSources(t, url)
  if (opened === null) return
  const { page, served, refused } = opened

  const states = await untilSources(page, states => states[refused]!.readyState === CLOSED, 'the refused EventSource to close')
  t.equal(states[refused]!.errors, 1, 'one error event, and no reconnection')
  t.equal(app.sse.stats().refusals['max-streams'], 1, 'refused once')
  await closeSource(page, served[0]!)
  await until(() => app.sse.stats().open === 1, 5000, 'a slot to free up')
  // Ten times the refusalRetry it was told: a 200 refusal would have come back several times by now.
  await sleep(2000)
  t.equal(app.sse.stats().refusals['max-streams'], 1, 'the server never heard from it again')
  t.equal(app.sse.stats().open, 1, 'and nobody took the free slot')
  const last = (await sourceStates(page))[refused]!
  t.same([last.readyState, last.received, last.errors], [CLOSED, [], 1], 'still closed, nothing received')
})
