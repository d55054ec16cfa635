import t from 'tap'
import { EventSource } from 'eventsource'
import { buildApp } from '../fixtures/app.js'
import { bodyOf, closeApp, rawGet, urlOf } from '../fixtures/http.js'
import { logsOf } from '../fixtures/logs.js'
import { untilAborted } from '../fixtures/sources.js'
import { until } from '../fixtures/wait.js'

// Admission limits: a stream past a limit is refused before its source opens, in a way an
// EventSource survives (200 + retry:), or with 429/503 for clients that read statuses.

const ES = { accept: 'text/event-stream' }

/** A source whose streams stay open until their client leaves, counting the sources it opened. */
const holdingRoute = () => untilAborted()

t.test('past maxStreams a stream gets 200, a retry: between refusalRetry and twice it, Retry-After, and an end; its source never opens', async t => {
  const { app, logs } = await buildApp(t, { maxStreams: 2, refusalRetry: 2000 })
  const route = holdingRoute()
  app.get('/events', (_request, reply) => reply.sse(route.source))
  const url = (await urlOf(app)) + '/events'
  const open = [await rawGet(url, ES), await rawGet(url, ES)]
  t.teardown(() => { for (const { request } of open) request.destroy() })
  await until(() => route.counts.opened === 2)

  const refused = await rawGet(url, ES)
  const body = await bodyOf(refused.response)
  t.equal(refused.response.statusCode, 200, 'a 200: an EventSource reconnects after it, where a 503 would end it for good')
  t.equal(refused.response.headers['content-type'], 'text/event-stream; charset=utf-8')
  const retry = Number(/^retry: (\d+)$/m.exec(body)?.[1])
  t.ok(retry >= 2000 && retry < 4000, `retry: ${retry} within [2000, 4000)`)
  t.equal(refused.response.headers['retry-after'], String(Math.ceil(retry / 1000)))
  t.match(body, /^: refused: max-streams\n\n/, 'a comment says why (EventSource ignores it)')
  t.equal(route.counts.opened, 2, 'the refused stream\'s source was never opened')
  t.equal(app.sse.stats().refusals['max-streams'], 1, 'counted')
  t.match(logsOf(logs, 'sse stream refused'), [{ level: 40, reason: 'max-streams', route: 'GET /events', retryMs: retry }],
    'logged once, with the route pattern')

  open[0]!.request.destroy()
  await until(() => app.sse.streams === 1)
  const admitted = await rawGet(url, ES)
  t.teardown(() => { admitted.request.destroy() })
  await until(() => route.counts.opened === 3, 2000, 'a freed slot to be taken')
  t.equal(admitted.response.statusCode, 200)
})

t.test('the retry: of refusals is jittered: a crowd refused at once does not come back at once', async t => {
  const { app } = await buildApp(t, { maxStreams: 1, refusalRetry: 1000 })
  const route = holdingRoute()
  app.get('/events', (_request, reply) => reply.sse(route.source))
  const url = (await urlOf(app)) + '/events'
  const holder = await rawGet(url, ES)
  t.teardown(() => { holder.request.destroy() })
  const retries = new Set<string>()
  for (let i = 0; i < 20; i++) retries.add(/retry: (\d+)/.exec(await bodyOf((await rawGet(url, ES)).response))![1]!)
  t.ok(retries.size >= 10, `20 refusals were told ${retries.size} different delays`)
})

for (const status of [429, 503] as const) {
  t.test(`refuseWith ${status}: an FST_SSE_LIMIT_REACHED error with Retry-After, for clients that read statuses`, async t => {
    const { app } = await buildApp(t, { maxStreams: 1, refuseWith: status, refusalRetry: 3000 })
    const route = holdingRoute()
    app.get('/events', (_request, reply) => reply.sse(route.source))
    const url = (await urlOf(app)) + '/events'
    const holder = await rawGet(url, ES)
    t.teardown(() => { holder.request.destroy() })
    await until(() => route.counts.opened === 1)
    const refused = await fetch(url, { headers: ES })
    t.equal(refused.status, status)
    const retryAfter = Number(refused.headers.get('retry-after'))
    t.ok(retryAfter >= 3 && retryAfter <= 6, `Retry-After: ${retryAfter}`)
    t.match(await refused.json(), { code: 'FST_SSE_LIMIT_REACHED', message: /maxStreams.*Retry after \d+ seconds/ })
    t.equal(route.counts.opened, 1)
  })
}

t.test('a route may refuse its own way: refuseWith per route and per stream', async t => {
  const { app } = await buildApp(t, { maxStreams: 1 })
  const route = holdingRoute()
  app.get('/events', (_request, reply) => reply.sse(route.source))
  app.get('/api/stream', { sse: { refuseWith: 429 } }, async function * () { yield 'x' })
  app.get('/api/other', (_request, reply) => reply.sse(['x'], { refuseWith: 503 }))
  const base = await urlOf(app)
  const holder = await rawGet(base + '/events', ES)
  t.teardown(() => { holder.request.destroy() })
  await until(() => route.counts.opened === 1)
  t.equal((await fetch(base + '/api/stream', { headers: ES })).status, 429)
  t.equal((await fetch(base + '/api/other', { headers: ES })).status, 503)
})

t.test('maxStreamsPerClient counts per client (request.ip by default, clientKey to choose), and frees as streams end', async t => {
  const { app } = await buildApp(t, { maxStreamsPerClient: 2, clientKey: request => String(request.headers['x-user']) })
  const route = holdingRoute()
  app.get('/events', (_request, reply) => reply.sse(route.source))
  const url = (await urlOf(app)) + '/events'
  const alice = [await rawGet(url, { ...ES, 'x-user': 'alice' }), await rawGet(url, { ...ES, 'x-user': 'alice' })]
  t.teardown(() => { for (const { request } of alice) request.destroy() })
  await until(() => route.counts.opened === 2)
  const third = await rawGet(url, { ...ES, 'x-user': 'alice' })
  t.match(await bodyOf(third.response), /^: refused: client-streams\n\nretry: \d+\n\n$/)
  const bob = await rawGet(url, { ...ES, 'x-user': 'bob' })
  t.teardown(() => { bob.request.destroy() })
  await until(() => route.counts.opened === 3, 2000, 'bob, another client, to be served')
  alice[0]!.request.destroy()
  await until(() => app.sse.streams === 2)
  const again = await rawGet(url, { ...ES, 'x-user': 'alice' })
  t.teardown(() => { again.request.destroy() })
  await until(() => route.counts.opened === 4, 2000, 'alice to be served once one of hers ended')
})

t.test('maxStreamsPerClient honours trustProxy: behind a proxy, each X-Forwarded-For is its own client', async t => {
  const { app } = await buildApp(t, { maxStreamsPerClient: 1 }, { trustProxy: true })
  const route = holdingRoute()
  app.get('/events', (_request, reply) => reply.sse(route.source))
  const url = (await urlOf(app)) + '/events'
  const one = await rawGet(url, { ...ES, 'x-forwarded-for': '203.0.113.1' })
  const two = await rawGet(url, { ...ES, 'x-forwarded-for': '203.0.113.2' })
  t.teardown(() => { one.request.destroy(); two.request.destroy() })
  await until(() => route.counts.opened === 2, 2000, 'both clients to be served')
  const refused = await rawGet(url, { ...ES, 'x-forwarded-for': '203.0.113.1' })
  t.match(await bodyOf(refused.response), /refused: client-streams/)
})

t.test('connectRate refuses a client that starts streams too often, and only that client', async t => {
  const { app } = await buildApp(t, { connectRate: { max: 3, windowMs: 60_000 }, clientKey: request => String(request.headers['x-user']) })
  let opened = 0
  app.get('/events', { sse: true }, async function * () { opened++; yield 'x' })
  const url = (await urlOf(app)) + '/events'
  const bodies: string[] = []
  for (let i = 0; i < 5; i++) bodies.push(await bodyOf((await rawGet(url, { ...ES, 'x-user': 'storm' })).response))
  t.same(bodies.map(body => body.startsWith(': refused: connect-rate')), [false, false, false, true, true])
  t.equal(opened, 3)
  t.equal(await bodyOf((await rawGet(url, { ...ES, 'x-user': 'calm' })).response), 'data: x\n\n')
  t.equal(app.sse.stats().refusals['connect-rate'], 2)
})

t.test('maxChannelSubscribers refuses the subscriber past the limit and closes its subscription', async t => {
  const { app } = await buildApp(t, { maxChannelSubscribers: 2 })
  const channel = app.sse.channel('news')
  app.get('/news', (request, reply) => reply.sse(channel.subscribe({ lastEventId: request.lastEventId })))
  app.get('/other', (request, reply) => reply.sse(app.sse.channel('other').subscribe()))
  const base = await urlOf(app)
  const two = [await rawGet(base + '/news', ES), await rawGet(base + '/news', ES)]
  t.teardown(() => { for (const { request } of two) request.destroy() })
  await until(() => channel.size === 2)
  const refused = await rawGet(base + '/news', ES)
  t.match(await bodyOf(refused.response), /^: refused: channel-subscribers\n\n/)
  t.equal(channel.size, 2, 'the refused subscription was closed, not left subscribed')
  const other = await rawGet(base + '/other', ES)
  t.teardown(() => { other.request.destroy() })
  await until(() => app.sse.channel('other').size === 1, 2000, 'another channel to take subscribers')
})

t.test('a real EventSource refused at the limit comes back by itself and is served once a slot frees up', async t => {
  const { app } = await buildApp(t, { maxStreams: 1, refusalRetry: 50 })
  let served = 0
  app.get('/ticks', { sse: true }, async function * (request) {
    served++
    for (let i = 0; !request.raw.destroyed; i++) {
      yield { id: i, data: i }
      await new Promise(resolve => setTimeout(resolve, 20))
    }
  })
  const url = (await urlOf(app)) + '/ticks'
  const first = new EventSource(url)
  t.teardown(() => { first.close() })
  const firstData: string[] = []
  first.onmessage = event => { firstData.push(event.data) }
  await until(() => firstData.length > 0, 10_000, 'the first to be served')
  const second = new EventSource(url)
  t.teardown(() => { second.close() })
  const secondData: string[] = []
  second.onmessage = event => { secondData.push(event.data) }
  await until(() => app.sse.stats().refusals['max-streams'] >= 2, 10_000, 'the second to be refused, and to come back')
  t.not(second.readyState, EventSource.CLOSED, 'refused, it keeps reconnecting: it did not fail for good')
  t.same(secondData, [], 'refused, it got no event')
  first.close()
  await until(() => secondData.length > 0, 10_000, 'the second to be served once the first left')
  t.equal(secondData[0], '0', 'served from the start')
  t.equal(served, 2)
  second.close()
  // After an aborted fetch undici opens a fresh keep-alive socket that app.close() would wait for.
  await closeApp(app)
})

t.test('a clientKey that throws is the reply\'s error, and the source it was given is closed, not leaked', async t => {
  const { app } = await buildApp(t, { maxStreamsPerClient: 5, clientKey: () => { throw Object.assign(new Error('no user'), { statusCode: 401 }) } })
  const channel = app.sse.channel('news')
  app.get('/news', (_request, reply) => reply.sse(channel.subscribe()))
  const response = await app.inject({ url: '/news', headers: ES })
  t.equal(response.statusCode, 401)
  t.match(response.json(), { message: 'no user' })
  t.equal(channel.size, 0, 'the subscription was closed')
  t.equal(app.sse.stats().sources, 0)
})

t.test('a refusal on a compressed route is plain text: its head says no content-encoding', async t => {
  const { app } = await buildApp(t, { maxStreams: 1, compress: true })
  app.get('/events', (_request, reply) => reply.sse(untilAborted().source))
  const url = (await urlOf(app)) + '/events'
  const holder = await rawGet(url, { ...ES, 'accept-encoding': 'gzip' })
  t.teardown(() => { holder.request.destroy() })
  t.equal(holder.response.headers['content-encoding'], 'gzip', 'the stream served is compressed')
  const refused = await rawGet(url, { ...ES, 'accept-encoding': 'gzip' })
  t.equal(refused.response.headers['content-encoding'], undefined)
  t.match(await bodyOf(refused.response), /^: refused: max-streams\n\nretry: \d+\n\n$/)
})
