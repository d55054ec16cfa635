import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import { EventSource } from 'eventsource'
import Fastify, { type FastifyInstance } from 'fastify'
import ssePlugin, { GAP_EVENT, type SsePluginOptions } from '../../lib/index.js'
import { openStream } from '../../lib/testing.js'
import { withTimeout } from '../../lib/timeout.js'
import { auth, build, type BuildOptions, sessionGuard, userChannel } from '../../examples/auth.js'
import { bearerEventSource, Login } from '../../examples/auth-client.js'
import { SessionSigner } from '../../examples/auth-session.js'
import { StreamTickets } from '../../examples/auth-tickets.js'
import { EXIT_WITH_PARENT } from '../fixtures/examples.js'
import { collectLogs, type LogLine, logsOf } from '../fixtures/logs.js'
import { closeApp, urlOf } from '../fixtures/http.js'
import { REDIS_URL, redisAvailable, uniquePrefix } from '../fixtures/redis.js'
import { until } from '../fixtures/wait.js'

const SECRET = 'a test secret of at least 32 bytes!'

/**
 * The example on a loopback port, with `log` collecting its lines; closed when the test ends.
 * `before` adds what the test needs (hooks, routes) before it listens.
 */
async function started (t: Test, opts: BuildOptions = {}, before?: (app: FastifyInstance) => void):
Promise<{ app: FastifyInstance, base: string, log: LogLine[] }> {
  const { lines, stream } = collectLogs()
  const app = await build({ secret: SECRET, secureCookie: false, retryMs: 50, logger: { stream }, ...opts })
  t.teardown(() => closeApp(app))
  before?.(app)
  return { app, base: await urlOf(app), log: lines }
}

async function post (url: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) })
}

interface LoggedIn { token: string, cookie: string, expiresAt: number }

async function login (base: string, user = 'alice'): Promise<LoggedIn> {
  const response = await post(base + '/login', { user, password: `${user}-password` })
  if (response.status !== 200) throw new Error(`login as ${user}: ${response.status}`)
  const { token, expiresAt } = await response.json() as { token: string, expiresAt: number }
  const cookie = (response.headers.get('set-cookie') ?? '').split(';')[0]!
  return { token, cookie, expiresAt }
}

const bearer = (session: LoggedIn): Record<string, string> => ({ authorization: `Bearer ${session.token}` })

/** An EventSource that sends `headers` (a cookie, a Last-Event-ID...) with every connection. */
function eventSource (url: string, headers: Record<string, string> = {}): EventSource {
  return new EventSource(url, { fetch: (input, init) => fetch(input, { ...init, headers: { ...init.headers, ...headers } }) })
}

interface Received { type: string, data: string, id: string }

/** Every event of `types` that `source` receives, in order, and a wait for the first `count` of them. */
function record (source: EventSource, types = ['message']): { events: Received[], first (count: number): Promise<Received[]> } {
  const events: Received[] = []
  for (const type of types) {
    source.addEventListener(type, event => {
      const { data, lastEventId } = event as MessageEvent
      events.push({ type, data, id: lastEventId })
    })
  }
  return {
    events,
    async first (count) {
      await until(() => events.length >= count, 5000, `${count} events (${events.length} so far)`)
      return events.slice(0, count)
    }
  }
}

/** How `source`'s connection attempts end: 'open', or the status of a refusal that closed it for good. */
function outcome (source: EventSource): Promise<'open' | number | undefined> {
  return new Promise(resolve => {
    source.addEventListener('open', () => resolve('open'), { once: true })
    source.addEventListener('error', event => {
      if (source.readyState === EventSource.CLOSED) resolve((event as Event & { code?: number }).code)
    })
  })
}

/** Wait until `source` is CLOSED (refused for good), and return the status of the refusal. */
function closedWith (source: EventSource, timeoutMs = 5000): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`still ${source.readyState} after ${timeoutMs} ms`)), timeoutMs)
    source.addEventListener('error', event => {
      if (source.readyState !== EventSource.CLOSED) return
      clearTimeout(timer)
      resolve((event as Event & { code?: number }).code)
    })
  })
}

/** The JSON body of `response`, or undefined (and the body cancelled) when it is not JSON: a stream would never end. */
async function jsonOf (response: Response): Promise<Record<string, unknown> | undefined> {
  if (response.headers.get('content-type')?.startsWith('application/json') === true) return response.json()
  await response.body?.cancel()
  return undefined
}

const text = (event: Received | undefined): string => JSON.parse(event?.data ?? 'null')?.text

t.test('cookie session', async t => {
  t.test('login sets the session as an HttpOnly, SameSite=Strict, Secure cookie, and answers the same token for bearer use', async t => {
    const { lines, stream } = collectLogs()
    const app = await build({ secret: SECRET, logger: { stream } })
    t.teardown(() => closeApp(app))
    const base = await urlOf(app)
    const response = await post(base + '/login', { user: 'alice', password: 'alice-password' })
    t.equal(response.status, 200)
    t.equal(response.headers.get('cache-control'), 'no-store')
    const { token, user, expiresAt } = await response.json() as { token: string, user: string, expiresAt: number }
    t.equal(user, 'alice')
    t.ok(expiresAt > Date.now() + 800_000, 'a 15-minute session by default')
    t.match(response.headers.get('set-cookie'), new RegExp(`^session=${token}; Path=/; Max-Age=9\\d\\d; HttpOnly; SameSite=Strict; Secure$`))
    t.same(new SessionSigner(SECRET).verify(token), { user: 'alice', expiresAt })
    t.notOk(lines.some(line => JSON.stringify(line).includes(token)), 'the token is not logged')

    for (const body of [{ user: 'alice', password: 'bob-password' }, { user: 'mallory', password: 'x' }, { user: '__proto__', password: 'x' }]) {
      const refused = await post(base + '/login', body)
      t.equal(refused.status, 401, JSON.stringify(body))
      t.equal((await refused.json()).code, 'FST_EXAMPLE_BAD_LOGIN')
      t.equal(refused.headers.get('set-cookie'), null)
    }
  })

  t.test('an EventSource sending the cookie receives the notifications its user posts', async t => {
    const { base } = await started(t)
    const alice = await login(base)
    const source = eventSource(base + '/events', { cookie: alice.cookie })
    t.teardown(() => source.close())
    const received = record(source)
    t.equal(await outcome(source), 'open')
    const posted = await post(base + '/notifications', { text: 'hello alice' }, { cookie: alice.cookie })
    const { id } = await posted.json() as { id: string }
    const [event] = await received.first(1)
    t.same(event, { type: 'message', data: '{"text":"hello alice"}', id })
  })

  t.test('without a valid session the stream is refused with a 401 JSON error, before any stream starts', async t => {
    const { app, base, log } = await started(t)
    const alice = await login(base)
    const [payload, mac] = alice.token.split('.') as [string, string]
    const asBob = Buffer.from(JSON.stringify({ user: 'bob', expiresAt: alice.expiresAt })).toString('base64url')
    const credentials: Record<string, Record<string, string>> = {
      'no credential': {},
      'a cookie that is no token': { cookie: 'session=hello' },
      'a cookie whose user was changed': { cookie: `session=${asBob}.${mac}` },
      'a cookie whose signature was changed': { cookie: `session=${payload}.${mac.slice(0, -2)}AA` },
      'a cookie signed with another secret': { cookie: 'session=' + new SessionSigner('another secret, also of 32 bytes!!').sign({ user: 'alice', expiresAt: alice.expiresAt }) },
      'an expired cookie': { cookie: 'session=' + new SessionSigner(SECRET).sign({ user: 'alice', expiresAt: Date.now() - 1 }) },
      // A client that sends an Authorization header means it: a valid cookie does not make a bad one good.
      'a bad bearer token beside a valid cookie': { authorization: 'Bearer nope', cookie: alice.cookie },
      'another scheme than Bearer beside a valid cookie': { authorization: `Basic ${alice.token}`, cookie: alice.cookie }
    }
    for (const [name, headers] of Object.entries(credentials)) {
      const response = await fetch(base + '/events', { headers: { accept: 'text/event-stream', ...headers } })
      t.equal(response.status, 401, name)
      t.match(response.headers.get('content-type'), /^application\/json/, `${name}: JSON, no event-stream head`)
      t.equal(response.headers.get('www-authenticate'), 'Bearer', name)
      t.equal((await jsonOf(response))?.code, 'FST_EXAMPLE_UNAUTHORIZED', name)

      const source = eventSource(base + '/events', headers)
      t.equal(await outcome(source), 401, `${name}: the EventSource is refused for good, never opened`)
      source.close()
    }
    t.equal(app.sse.channel(userChannel('alice')).size, 0, 'nothing subscribed to the channel')
    t.same(logsOf(log, 'sse stream ended'), [], 'no stream started, so none ended')
  })

  t.test('the guard refuses before the source is opened: a generator behind it counts no opens', async t => {
    const app = await build({ secret: SECRET, secureCookie: false })
    let opens = 0
    app.get('/counted', { preHandler: sessionGuard(new SessionSigner(SECRET)) }, (request, reply) =>
      reply.sse((async function * () {
        opens++
        yield 'opened'
      })()))
    t.teardown(() => closeApp(app))
    const base = await urlOf(app)
    const refused = eventSource(base + '/counted', { cookie: 'session=forged.AAAA' })
    t.equal(await outcome(refused), 401)
    refused.close()
    t.equal(opens, 0, 'refused: the generator never ran')

    // The counter does count: a valid session opens the generator once.
    const alice = await login(base)
    const accepted = eventSource(base + '/counted', { cookie: alice.cookie })
    const [event] = await record(accepted).first(1)
    accepted.close()
    t.equal(event?.data, 'opened')
    t.equal(opens, 1)
  })
})

t.test('stream tickets', async t => {
  t.test('POST /stream-tickets issues a random 256-bit ticket for a bearer token or a session cookie, and 401 to neither', async t => {
    const { base } = await started(t)
    const alice = await login(base)
    const seen = new Set<string>()
    for (const headers of [bearer(alice), { cookie: alice.cookie }]) {
      const response = await post(base + '/stream-tickets', { route: '/ticketed/events' }, headers)
      t.equal(response.status, 201)
      t.equal(response.headers.get('cache-control'), 'no-store')
      const { ticket, expiresAt, url } = await response.json() as { ticket: string, expiresAt: number, url: string }
      t.equal(Buffer.from(ticket, 'base64url').length, 32, '256 random bits')
      t.equal(url, `/ticketed/events?ticket=${ticket}`)
      t.ok(expiresAt > Date.now() && expiresAt <= Date.now() + 30_000, 'valid for 30 s at most')
      seen.add(ticket)
    }
    t.equal(seen.size, 2, 'every ticket is new')
    const anonymous = await post(base + '/stream-tickets', { route: '/ticketed/events' })
    t.equal(anonymous.status, 401)
    t.equal((await anonymous.json()).code, 'FST_EXAMPLE_UNAUTHORIZED')
  })

  t.test('tickets are for ticketed routes only', async t => {
    const { base } = await started(t)
    const alice = await login(base)
    const response = await post(base + '/stream-tickets', { route: '/events' }, bearer(alice))
    t.equal(response.status, 400)
    t.match(await response.json(), { code: 'FST_EXAMPLE_NOT_TICKETED', message: /\/ticketed\/events, \/ticketed\/announcements/ })
  })

  t.test('a ticket opens its user\'s stream once: the same URL again is refused, and the EventSource stops', async t => {
    const { app, base } = await started(t)
    const alice = await login(base)
    const { url } = await (await post(base + '/stream-tickets', { route: '/ticketed/events' }, bearer(alice))).json() as { url: string }
    const source = new EventSource(base + url)
    t.teardown(() => source.close())
    const received = record(source)
    t.equal(await outcome(source), 'open')
    await app.sse.channel(userChannel('alice')).publishData({ text: 'for alice' })
    await app.sse.channel(userChannel('bob')).publishData({ text: 'for bob' })
    await app.sse.channel(userChannel('alice')).publishData({ text: 'for alice again' })
    t.same((await received.first(2)).map(text), ['for alice', 'for alice again'], 'the ticket\'s user\'s channel, no other')

    // The connection drops: the EventSource reconnects with the same URL, whose ticket is spent.
    app.server.closeAllConnections()
    t.equal(await closedWith(source), 401)

    const replay = await fetch(base + url, { headers: { accept: 'text/event-stream' } })
    t.equal(replay.status, 401)
    t.match(await jsonOf(replay), { code: 'FST_EXAMPLE_UNAUTHORIZED', message: /unknown, spent, expired or for another route/ })
  })

  t.test('of requests racing with one ticket, exactly one opens a stream', async t => {
    const { base } = await started(t)
    const alice = await login(base)
    const { url } = await (await post(base + '/stream-tickets', { route: '/ticketed/events' }, bearer(alice))).json() as { url: string }
    const controller = new AbortController()
    t.teardown(() => controller.abort())
    const responses = await Promise.all(Array.from({ length: 10 },
      () => fetch(base + url, { headers: { accept: 'text/event-stream' }, signal: controller.signal })))
    t.same(responses.map(response => response.status).sort(), [200, 401, 401, 401, 401, 401, 401, 401, 401, 401])
  })

  t.test('an expired ticket is refused', async t => {
    const { base } = await started(t, { ticketTtlMs: 100 })
    const alice = await login(base)
    const { url, expiresAt } = await (await post(base + '/stream-tickets', { route: '/ticketed/events' }, bearer(alice))).json() as { url: string, expiresAt: number }
    await sleep(expiresAt - Date.now() + 20)
    t.equal(await outcome(new EventSource(base + url)), 401)
  })

  t.test('a ticket shown on another route is refused, and burnt: its own route refuses it too', async t => {
    const { base } = await started(t)
    const alice = await login(base)
    const { ticket } = await (await post(base + '/stream-tickets', { route: '/ticketed/announcements' }, bearer(alice))).json() as { ticket: string }
    t.equal(await outcome(new EventSource(`${base}/ticketed/events?ticket=${ticket}`)), 401)
    t.equal(await outcome(new EventSource(`${base}/ticketed/announcements?ticket=${ticket}`)), 401)
  })

  t.test('a client with a new ticket resumes after the ?lastEventId= it gives (a new EventSource cannot send the header)', async t => {
    const { app, base } = await started(t)
    const alice = await login(base)
    const channel = app.sse.channel(userChannel('alice'))
    const first = await channel.publishData({ text: 'one' })
    await channel.publishData({ text: 'two' })
    const { url } = await (await post(base + '/stream-tickets', { route: '/ticketed/events' }, bearer(alice))).json() as { url: string }
    const source = new EventSource(`${base}${url}&lastEventId=${encodeURIComponent(first)}`)
    t.teardown(() => source.close())
    t.same((await record(source).first(1)).map(text), ['two'])
  })

  t.test('a user holds at most maxTicketsPerUser unspent tickets: a new one evicts the oldest', async t => {
    const { base } = await started(t, { maxTicketsPerUser: 2 })
    const alice = await login(base)
    const bob = await login(base, 'bob')
    const issue = async (session: LoggedIn) => (await (await post(base + '/stream-tickets', { route: '/ticketed/events' }, bearer(session))).json() as { url: string }).url
    const [a1, a2, b1, a3] = [await issue(alice), await issue(alice), await issue(bob), await issue(alice)]
    const statuses = []
    for (const url of [a1, a2, a3, b1]) {
      const source = new EventSource(base + url!)
      statuses.push(await outcome(source))
      source.close()
    }
    t.same(statuses, [401, 'open', 'open', 'open'], 'alice\'s oldest is gone; bob\'s are his own')
  })

  t.test('StreamTickets: expired tickets are swept, every ticket is gone once spent, and bad limits are refused', async t => {
    const tickets = new StreamTickets({ ttlMs: 1000, maxPerUser: 3 })
    t.teardown(() => tickets.close())
    const now = 1_000_000
    const a = tickets.issue('alice', '/r', now + 60_000, now)
    t.equal(a.expiresAt, now + 1000)
    const b = tickets.issue('bob', '/r', now + 500, now)
    t.equal(b.expiresAt, now + 500, 'never valid past its session')
    tickets.issue('alice', '/r', now + 60_000, now + 900)
    tickets.sweep(now + 999)
    t.equal(tickets.size, 2, 'bob\'s expired at its session\'s end')
    tickets.sweep(now + 1000)
    t.equal(tickets.size, 1, 'alice\'s first expired')
    t.equal(tickets.spend(a.ticket, '/r', now + 1), undefined, 'a swept ticket opens nothing')
    const c = tickets.issue('alice', '/r', now + 60_000, now)
    t.match(tickets.spend(c.ticket, '/r', now + 1), { user: 'alice', route: '/r', sessionExpiresAt: now + 60_000 })
    t.equal(tickets.spend(c.ticket, '/r', now + 2), undefined, 'spent')
    t.equal(tickets.spend(undefined, '/r'), undefined)
    for (let i = 0; i < 10; i++) tickets.issue('mallory', '/r', now + 60_000, now)
    t.equal(tickets.size, 1 + 3, 'mallory holds 3 however many she asks for')
    tickets.close()
    t.equal(tickets.size, 0)
    t.throws(() => new StreamTickets({ ttlMs: 0 }), RangeError)
    t.throws(() => new StreamTickets({ maxPerUser: 0 }), RangeError)
  })
})

/**
 * The example, and alice's notifications open through bearerEventSource; `sent` keeps the
 * Authorization header of every request for /events.
 */
async function bearerClient (t: Test, opts: BuildOptions = {}) {
  const sent: Array<string | undefined> = []
  const { app, base } = await started(t, opts, app => app.addHook('onRequest', async request => {
    if (request.url === '/events') sent.push(request.headers.authorization)
  }))
  const client = new Login(base, 'alice', 'alice-password')
  const source = bearerEventSource(base + '/events', () => client.token())
  t.teardown(() => source.close())
  const received = record(source)
  t.equal(await outcome(source), 'open')
  return { app, sent, client, source, received, channel: app.sse.channel(userChannel('alice')) }
}

t.test('bearer client', async t => {
  t.test('bearerEventSource sends Authorization: Bearer on the first connection and on every reconnection', async t => {
    const { app, sent, client, source, received, channel } = await bearerClient(t)
    await channel.publishData({ text: 'before the drop' })
    await received.first(1)
    // The connection drops: the EventSource reconnects through the same fetch, and resumes.
    const reconnected = new Promise(resolve => source.addEventListener('open', resolve, { once: true }))
    app.server.closeAllConnections()
    await reconnected
    await channel.publishData({ text: 'after the drop' })
    t.same((await received.first(2)).map(text), ['before the drop', 'after the drop'])
    t.equal(sent.length, 2)
    t.match(sent[0], /^Bearer [\w-]+\.[\w-]+$/)
    t.equal(sent[1], sent[0], 'the same token on the reconnection')
    t.equal(client.logins, 1, 'the token had not expired: no second login')
  })

  t.test('run from the command line, the client logs in, prints its user\'s notifications and stops at --count', async t => {
    const { app, base } = await started(t)
    const child = spawn(process.execPath, ['--import', 'tsx', '--import', EXIT_WITH_PARENT, 'examples/auth-client.ts', base, '--user', 'bob',
      '--password', 'bob-password', '--count', '2'], { stdio: ['ignore', 'pipe', 'pipe'] })
    t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
    const exited = once(child, 'exit')
    let stdout = ''
    child.stdout.setEncoding('utf8').on('data', chunk => { stdout += chunk })
    for await (const line of createInterface({ input: child.stderr })) {
      if (line === `Connected to ${base}/events as bob`) break
    }
    child.stderr.resume()
    for (const text of ['one', 'two', 'three']) await app.sse.channel(userChannel('bob')).publishData({ text })
    t.same(await exited, [0, null], 'a clean exit')
    t.equal(stdout, 'Received notification: {"text":"one"}\nReceived notification: {"text":"two"}\n')
  })

  t.test('a client whose login fails says why', async t => {
    const { base } = await started(t)
    await t.rejects(new Login(base, 'alice', 'wrong').token(), { message: /login as alice failed: 401/ })
  })
})

t.test('the stream ends when the session expires', async t => {
  t.test('with reason expired and a retry:, and the reconnection with the expired cookie gets 401', async t => {
    const { app, base, log } = await started(t, { sessionTtlMs: 1000 })
    const alice = await login(base)
    const stream = await openStream(app, '/events', { headers: { cookie: alice.cookie } })
    t.equal(stream.status, 200)
    await withTimeout(stream.ended, 10_000, () => { throw new Error('the stream outlived its session by 9 s') })
    const endedAt = Date.now()
    t.ok(endedAt >= alice.expiresAt - 5, `ended ${endedAt - alice.expiresAt} ms after the session expired, not before`)
    t.ok(stream.retry !== undefined && stream.retry >= 50, `a retry: (${stream.retry} ms) so the client comes back`)
    t.same(logsOf(log, 'sse stream ended').map(line => line.reason), ['expired'])

    const source = eventSource(base + '/events', { cookie: alice.cookie })
    t.equal(await outcome(source), 401, 'the client comes back with the expired cookie: refused for good')
    source.close()
  })

  t.test('an EventSource open at the expiry reconnects, is refused with 401, and stops', async t => {
    const { base } = await started(t, { sessionTtlMs: 800 })
    const alice = await login(base)
    const source = eventSource(base + '/events', { cookie: alice.cookie })
    t.teardown(() => source.close())
    t.equal(await outcome(source), 'open')
    t.equal(await closedWith(source), 401)
    t.ok(Date.now() >= alice.expiresAt, 'refused after the expiry, not before')
  })

  t.test('a ticketed stream ends with the session it was issued under', async t => {
    const { base, log } = await started(t, { sessionTtlMs: 800 })
    const alice = await login(base)
    const { url, expiresAt } = await (await post(base + '/stream-tickets', { route: '/ticketed/events' }, bearer(alice))).json() as { url: string, expiresAt: number }
    t.equal(expiresAt, alice.expiresAt, 'the ticket is valid no longer than its session')
    const source = new EventSource(base + url)
    t.teardown(() => source.close())
    t.equal(await outcome(source), 'open')
    t.equal(await closedWith(source), 401, 'ended at the expiry; its reconnection has no ticket left')
    t.same(logsOf(log, 'sse stream ended').map(line => line.reason), ['expired'])
  })

  t.test('the bearer client logs in again at the expiry and misses no event', async t => {
    const { sent, client, received, channel } = await bearerClient(t, { sessionTtlMs: 700 })
    const texts = ['one', 'two', 'three', 'four', 'five', 'six']
    // Published every 200 ms, across the expiry and the reconnection.
    for (const text of texts) {
      await channel.publishData({ text })
      await sleep(200)
    }
    t.same((await received.first(texts.length)).map(text), texts, 'each once, in order')
    t.ok(client.logins >= 2, `${client.logins} logins`)
    t.ok(sent.length >= 2 && new Set(sent).size === sent.length, 'each connection with a token of its own login')
  })
})

/** Whether `line`, as logged, holds `secret` anywhere. */
const holds = (line: LogLine, secret: string): boolean => JSON.stringify(line).includes(secret)

/** Two streams a client may start per minute: the third of streamsWithSecrets is refused, and the plugin logs it. */
const LIMITED: SsePluginOptions = { connectRate: { max: 2, windowMs: 60_000 } }

/**
 * A stream opened with `secret` in the query string, the Last-Event-ID and a header; a ticketed one;
 * and one more like the first, which LIMITED refuses.
 */
async function streamsWithSecrets (app: FastifyInstance, base: string, secret: string): Promise<string> {
  const alice = await login(base)
  const headers = { cookie: alice.cookie, 'last-event-id': secret, 'x-api-key': secret }
  const stream = await openStream(app, `/events?token=${secret}`, { headers })
  await stream.take(1) // the gap notice: the secret is no id of the channel's
  await stream.close()
  const { url, ticket } = await (await post(base + '/stream-tickets', { route: '/ticketed/events' }, bearer(alice))).json() as { url: string, ticket: string }
  const ticketed = await openStream(app, url)
  await ticketed.close()
  const refused = await openStream(app, `/events?token=${secret}`, { headers })
  await refused.ended
  return ticket
}

t.test('log lines', async t => {
  t.test('the plugin\'s own lines never carry a secret of the query string, the Last-Event-ID or a header', async t => {
    // Fastify's default serializers: what the plugin logs is all it can answer for.
    const { lines, stream } = collectLogs()
    const app = Fastify({ logger: { stream } })
    await app.register(ssePlugin, LIMITED)
    await app.register(auth, { secret: SECRET, secureCookie: false })
    t.teardown(() => closeApp(app))
    const ticket = await streamsWithSecrets(app, await urlOf(app), 'SECRET123')
    const plugin = lines.filter(line => line.msg.startsWith('sse'))
    t.equal(logsOf(plugin, 'sse stream ended').length, 2, 'the plugin logged both streams')
    t.match(logsOf(plugin, 'sse stream refused'), [{ reason: 'connect-rate', route: 'GET /events' }], 'and the refusal')
    t.same(plugin.filter(line => holds(line, 'SECRET123') || holds(line, ticket)), [])
    // Which is why build() changes Fastify's request serializer:
    t.ok(lines.some(line => line.msg === 'incoming request' && holds(line, 'token=SECRET123')), 'Fastify\'s own line has the query')
    t.ok(lines.some(line => line.msg === 'incoming request' && holds(line, ticket)), 'and the ticket')
  })

  t.test('with build()\'s logger, no line at all carries one: requests, refusals and unknown URLs log paths only', async t => {
    const { app, base, log } = await started(t, { sse: LIMITED })
    const ticket = await streamsWithSecrets(app, base, 'SECRET123')
    const refused = await fetch(`${base}/ticketed/events?ticket=${ticket}`)
    t.equal(refused.status, 401)
    const unknown = await fetch(`${base}/nowhere?token=SECRET123`)
    t.equal(unknown.status, 404)
    t.equal((await unknown.json()).message, 'Route GET:/nowhere not found', 'nor is the query echoed back')
    const invalid = await fetch(`${base}/ticketed/events?ticket=${'SECRET123'.repeat(10)}`)
    t.equal(invalid.status, 400)
    await until(() => logsOf(log, 'request completed').length >= 5, 2000, 'every request that is no stream logged')
    t.same(log.filter(line => holds(line, 'SECRET123') || holds(line, ticket)), [])
    const urls = logsOf(log, 'incoming request').map(line => (line.req as { url: string }).url)
    t.same(urls, ['/login', '/events', '/stream-tickets', '/ticketed/events', '/events', '/ticketed/events', '/nowhere', '/ticketed/events'])
  })
})

/** Bob, sending an id of alice's channel as his Last-Event-ID, gets nothing of alice's. */
async function isolation (t: Test, sse: SsePluginOptions): Promise<void> {
  const { app, base } = await started(t, { sse })
  const alice = await login(base)
  const bob = await login(base, 'bob')
  const publish = async (session: LoggedIn, text: string) =>
    (await (await post(base + '/notifications', { text }, { cookie: session.cookie })).json() as { id: string }).id
  await publish(bob, 'bob 1')
  await publish(alice, 'alice 1')
  const aliceId = await publish(alice, 'alice 2')
  await publish(bob, 'bob 2')
  await publish(alice, 'alice 3')

  const source = eventSource(base + '/events', { cookie: bob.cookie, 'last-event-id': aliceId })
  t.teardown(() => source.close())
  const received = record(source, ['message', GAP_EVENT])
  t.equal(await outcome(source), 'open')
  await publish(alice, 'alice 4')
  await publish(bob, 'bob 3')
  await until(() => received.events.some(event => text(event) === 'bob 3'), 5000, 'bob\'s live event')
  // Alice's id is none of bob's channel: bob is told he may have missed some (of his own), then gets
  // what his channel keeps, then his live events. The notice names only the id bob sent.
  t.same(received.events.map(event => event.type === GAP_EVENT ? `gap after ${JSON.parse(event.data).lastEventId}` : text(event)),
    [`gap after ${aliceId}`, 'bob 1', 'bob 2', 'bob 3'], 'nothing of alice\'s')
  t.equal(app.sse.channel(userChannel('alice')).size, 0, 'bob\'s stream subscribed to his channel only')
}

t.test('per-user channels', async t => {
  t.test('in memory: alice\'s event id as Last-Event-ID replays nothing of hers to bob, just a gap and his own', async t => {
    await isolation(t, {})
  })

  t.test('through Redis: the same', async t => {
    if (!await redisAvailable(t)) return
    await isolation(t, { redis: REDIS_URL, redisPrefix: uniquePrefix(t) })
  })
})
