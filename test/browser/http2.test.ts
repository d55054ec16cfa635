import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../fixtures/app.js'
import { launchChromium } from '../fixtures/chromium.js'
import { urlOf } from '../fixtures/http.js'
import { closeSource, openSources, servePage, sourceStates, untilSources } from '../fixtures/page-streams.js'
import { httpsUrlOf, selfSignedCertificate } from '../fixtures/tls.js'
import { until } from '../fixtures/wait.js'

// Why HTTP/2 matters for SSE: a browser opens at most six HTTP/1.1 connections per origin, and an
// EventSource holds one for as long as it is open, so a page's seventh stream (another tab's, too)
// waits. Over HTTP/2 every stream is multiplexed on one connection. Shown in Chromium, on counts.

const OPEN = 1
const CONNECTING = 0
const CLOSED = 2

/** The page and the stream route of `app`: every stream follows channel 'x'; the HTTP versions seen are kept. */
function routes (app: FastifyInstance): { versions: string[] } {
  const versions: string[] = []
  servePage(app)
  app.get('/events', (request, reply) => {
    versions.push(request.raw.httpVersion)
    return reply.sse(app.sse.channel('x').subscribe({ lastEventId: request.lastEventId }))
  })
  return { versions }
}

/** Publish `data` on channel 'x' of `app`. */
const publish = (app: FastifyInstance, data: string) => app.sse.channel('x').publish(data)

t.test('over HTTPS and HTTP/2 one page opens ten EventSources on one origin and all ten receive every event', async t => {
  t.setTimeout(30_000)
  const certificate = await selfSignedCertificate(t)
  if (certificate === null) return
  const { app } = await buildApp(t, {}, { http2: true, https: { ...certificate, allowHTTP1: true } } as never)
  const { versions } = routes(app)
  const url = await httpsUrlOf(app)
  const browser = await launchChromium(t)
  if (browser === null) return
  // The certificate is the test's own: the browser is told to accept it, nothing else changes.
  const context = await browser.newContext({ ignoreHTTPSErrors: true })
  const page = await context.newPage()
  await page.goto(url + '/')
  t.equal(await page.evaluate(() => (performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming).nextHopProtocol),
    'h2', 'the page itself came over HTTP/2')

  await openSources(page, '/events', 10)
  await untilSources(page, states => states.every(state => state.readyState === OPEN), 'ten open EventSources')
  await until(() => app.sse.channel('x').size === 10, 5000, 'ten subscribers')
  t.same(versions, Array(10).fill('2.0'), 'ten streams, every one over HTTP/2')

  for (const data of ['one', 'two', 'three']) await publish(app, data)
  const states = await untilSources(page, states => states.every(state => state.received.length === 3), 'three events everywhere')
  t.same(states.map(state => state.received), Array(10).fill(['one', 'two', 'three']), 'all ten received every event')
})

t.test('over plain HTTP/1.1 the same page gets six streams: the seventh waits until one of the six closes', async t => {
  t.setTimeout(30_000)
  const { app } = await buildApp(t)
  const { versions } = routes(app)
  const channel = app.sse.channel('x')
  const url = await urlOf(app)
  const browser = await launchChromium(t)
  if (browser === null) return
  const page = await browser.newPage()
  await page.goto(url + '/')

  await openSources(page, '/events', 10)
  await until(() => channel.size === 6, 10_000, 'six subscribers')
  // Six streams hold the six connections the browser allows the origin. For a few seconds, events keep
  // reaching them while the other four stay unconnected.
  for (const [index, data] of ['one', 'two', 'three'].entries()) {
    await publish(app, data)
    await untilSources(page, states => states.filter(state => state.received.length === index + 1).length === 6,
      `six EventSources to receive event ${index + 1}`)
    await sleep(700)
  }
  const before = await sourceStates(page)
  const open = before.flatMap((state, index) => state.readyState === OPEN ? [index] : [])
  const waiting = before.flatMap((state, index) => state.readyState === CONNECTING ? [index] : [])
  t.equal(open.length, 6, 'exactly six open')
  t.equal(waiting.length, 4, 'four still connecting')
  t.same(open.map(index => before[index]!.received), Array(6).fill(['one', 'two', 'three']), 'the six received every event')
  t.same(waiting.map(index => before[index]!.received), Array(4).fill([]), 'the four received nothing')
  t.equal(channel.size, 6, 'the server never saw the four')
  t.same(versions, Array(6).fill('1.1'))

  // Closing one frees its connection: exactly one waiting EventSource takes it.
  await closeSource(page, open[0]!)
  const after = await untilSources(page, states => waiting.some(index => states[index]!.readyState === OPEN),
    'a waiting EventSource to open')
  const started = waiting.filter(index => after[index]!.readyState === OPEN)
  t.equal(started.length, 1, 'one of the waiting four opened')
  await until(() => channel.size === 6, 5000, 'the new subscriber in place of the closed one')
  await publish(app, 'four')
  const last = await untilSources(page, states => states[started[0]!]!.received.length === 1, 'the new stream to receive an event')
  t.same(last[started[0]!]!.received, ['four'], 'and it receives events')
  t.equal(last[open[0]!]!.readyState, CLOSED)
  t.same(open.slice(1).map(index => last[index]!.received.length), Array(5).fill(4), 'the other five go on')
  t.same(waiting.filter(index => index !== started[0]).map(index => [last[index]!.readyState, last[index]!.received.length]),
    Array(3).fill([CONNECTING, 0]), 'and three still wait')
})
