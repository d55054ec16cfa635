import t, { type Test } from 'tap'
import { randomUUID } from 'node:crypto'
import cors from '@fastify/cors'
import type { FastifyInstance } from 'fastify'
import type { Page } from 'playwright-core'
import { buildApp } from '../fixtures/app.js'
import { launchChromium } from '../fixtures/chromium.js'
import { urlOf } from '../fixtures/http.js'
import { openSources, servePage, sourceStates, untilSources } from '../fixtures/page-streams.js'
import { until } from '../fixtures/wait.js'

// A stream on another origin than its page (an API host), behind a session cookie: the page opens
// `new EventSource(url, { withCredentials: true })` and the stream's app answers CORS with
// @fastify/cors `{ origin: <the page's origin>, credentials: true }`. Origins differ by port only
// (127.0.0.1:A and 127.0.0.1:B): cross-origin but same-site, so SameSite=Lax cookies flow.

const OPEN = 1
const CLOSED = 2

/** What the stream route saw of one request. */
interface Seen { origin: string | undefined, session: boolean }

/**
 * The stream's app: POST /login sets the session cookie; GET /events streams channel 'x' to a request
 * carrying it and answers 401 to any other.
 */
async function streamApp (t: Test, allowedOrigin: string) {
  const token = randomUUID()
  const { app, logs } = await buildApp(t)
  await app.register(cors, { origin: allowedOrigin, credentials: true })
  const seen: Seen[] = []
  app.post('/login', (_request, reply) => {
    reply.header('set-cookie', `session=${token}; Path=/; HttpOnly; SameSite=Lax`).send({ ok: true })
  })
  app.get('/events', {
    preHandler: async (request, reply) => {
      const session = (request.headers.cookie ?? '').split(/;\s*/).includes(`session=${token}`)
      seen.push({ origin: request.headers.origin, session })
      if (!session) return reply.code(401).send({ error: 'no session' })
    }
  }, (request, reply) => reply.sse(app.sse.channel('x').subscribe({ lastEventId: request.lastEventId })))
  return { app, url: await urlOf(app), token, seen, logs }
}

/** A page on its own origin (its own app, on its own port). */
async function pageApp (t: Test): Promise<{ app: FastifyInstance, url: string }> {
  const { app } = await buildApp(t)
  servePage(app)
  return { app, url: await urlOf(app) }
}

/** Open one more EventSource in `page` and wait until it has settled (OPEN, or CLOSED after an error). */
async function openSettled (page: Page, url: string, init: EventSourceInit) {
  const index = (await sourceStates(page)).length
  await openSources(page, url, 1, init)
  const states = await untilSources(page, states => states[index]!.readyState !== 0, `EventSource ${index} to open or fail`)
  return { index, state: states[index]! }
}

t.test('a page on another origin streams with withCredentials: its session cookie reaches the stream route and CORS names the page', async t => {
  t.setTimeout(30_000)
  const page$ = await pageApp(t)
  const stream = await streamApp(t, page$.url)
  const browser = await launchChromium(t)
  if (browser === null) return
  const page = await browser.newPage()
  await page.goto(page$.url + '/')

  const refused = await openSettled(page, `${stream.url}/events`, { withCredentials: true })
  t.equal(refused.state.readyState, CLOSED, 'before login the route answers 401: the EventSource fails')
  t.ok(refused.state.errors >= 1)

  const login = await page.evaluate(async url => (await fetch(url, { method: 'POST', credentials: 'include' })).status,
    `${stream.url}/login`)
  t.equal(login, 200, 'the page logged in on the stream origin')

  const anonymous = await openSettled(page, `${stream.url}/events`, {})
  t.equal(anonymous.state.readyState, CLOSED, 'without withCredentials the cookie is not sent: 401 again')

  const responded = page.waitForResponse(response => response.url() === `${stream.url}/events` && response.status() === 200,
    { timeout: 10_000 })
  const allowed = await openSettled(page, `${stream.url}/events`, { withCredentials: true })
  t.equal(allowed.state.readyState, OPEN, 'with withCredentials the stream opens')
  const headers = (await responded).headers()
  t.equal(headers['access-control-allow-origin'], page$.url, 'the answer names the page origin')
  t.equal(headers['access-control-allow-credentials'], 'true')
  t.equal(headers['content-type'], 'text/event-stream; charset=utf-8')
  t.same(stream.seen, [
    { origin: page$.url, session: false },
    { origin: page$.url, session: false },
    { origin: page$.url, session: true }
  ], 'the route saw the cookie only on the credentialed stream after login')

  await until(() => stream.app.sse.channel('x').size === 1, 5000, 'the subscriber')
  for (const data of ['one', 'two']) await stream.app.sse.channel('x').publish(data)
  const states = await untilSources(page, states => states[allowed.index]!.received.length === 2, 'two events')
  t.same(states.map(state => state.received), [[], [], ['one', 'two']], 'events reach the credentialed stream only')
})

t.test('a page on an origin the stream does not allow gets no events, even with the cookie', async t => {
  t.setTimeout(30_000)
  const allowedPage = await pageApp(t)
  const otherPage = await pageApp(t)
  const stream = await streamApp(t, allowedPage.url)
  const browser = await launchChromium(t)
  if (browser === null) return
  const context = await browser.newContext()
  // The session is there: only CORS stands between the page and the stream.
  await context.addCookies([{ name: 'session', value: stream.token, url: stream.url, httpOnly: true, sameSite: 'Lax' }])
  const page = await context.newPage()
  await page.goto(otherPage.url + '/')

  const blocked = await openSettled(page, `${stream.url}/events`, { withCredentials: true })
  t.equal(blocked.state.readyState, CLOSED, 'the EventSource fails and stays closed')
  t.ok(blocked.state.errors >= 1, 'with an error event')
  t.same(stream.seen, [{ origin: otherPage.url, session: true }], 'the request carried the cookie: the browser refused the answer')
  // The browser holds the connection of the response it refused for about 5 s (it reads on, to reuse
  // the connection), then drops it: the server ends the stream as it does for any client gone.
  await until(() => stream.app.sse.streams === 0, 15_000, 'the refused stream to end on the server')
  t.same(stream.logs.filter(line => line.msg === 'sse stream ended').map(line => [line.reason, line.events]),
    [['client-gone', 0]], 'it ended without an event, as its client left')
  await stream.app.sse.channel('x').publish('secret')
  t.same((await sourceStates(page)).map(state => [state.readyState, state.received]), [[CLOSED, []]], 'no event reached the page')
})
