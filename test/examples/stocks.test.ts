import t, { type Test } from 'tap'
import { once } from 'node:events'
import { connect } from 'node:net'
import Fastify from 'fastify'
import { EventSource } from 'eventsource'
import { openStream } from '../../lib/testing.js'
import { build } from '../../examples/stocks/index.js'
import { buildPriceServer } from '../../examples/stocks/price-server.js'
import { nextEvents } from '../fixtures/examples.js'
import { closeApp, urlOf } from '../fixtures/http.js'
import { until } from '../fixtures/wait.js'

t.test('the price server answers a price per known symbol, moving a little each time', async t => {
  const prices = await buildPriceServer({ prices: { AAPL: 100 } })
  t.teardown(() => prices.close())
  const first = await prices.inject({ url: '/stock/AAPL' })
  t.equal(first.statusCode, 200)
  t.equal(first.json().symbol, 'AAPL')
  t.ok(Math.abs(first.json().price - 100) <= 0.5, `within 0.5 % of 100: ${first.json().price}`)
  t.equal((await prices.inject({ url: '/stock/NOPE' })).statusCode, 404)
})

t.test('the price server can be told to fail a share of requests', async t => {
  const prices = await buildPriceServer({ failureRate: 1 })
  t.teardown(() => prices.close())
  t.equal((await prices.inject({ url: '/stock/AAPL' })).statusCode, 503)
})

t.test('the price server closes at once, even with a connection that never sent a request', async t => {
  const prices = await buildPriceServer()
  const url = new URL(await urlOf(prices))
  const socket = connect(Number(url.port), url.hostname)
  await once(socket, 'connect')
  const closed = once(socket, 'close')
  const started = performance.now()
  await prices.close()
  await closed
  t.ok(performance.now() - started < 5000, 'not after Node\'s 60 s headers timeout')
})

t.test('streams one event per round with every symbol\'s price, from the bundled price server', async t => {
  const app = await build({ intervalMs: 10, symbols: ['AAPL', 'GOOGL', 'MSFT'] })
  t.teardown(() => closeApp(app))
  const stream = await openStream(app, '/events')
  const rounds = await stream.take(2)
  await stream.close()
  for (const round of rounds) {
    t.equal(round.event, undefined, 'a plain message event')
    const prices = JSON.parse(round.data)
    t.same(Object.keys(prices), ['AAPL', 'GOOGL', 'MSFT'])
    t.ok(Object.values(prices).every(price => typeof price === 'number' && price > 0))
  }
})

/** An upstream whose answers the test controls: `hold` keeps requests waiting, `broken` answers 503. */
async function upstream (t: Test) {
  const state = { hold: false, broken: new Set<string>(), received: [] as string[], closedUnanswered: 0 }
  let onReceived = (): void => {}
  const app = Fastify()
  app.get<{ Params: { symbol: string } }>('/stock/:symbol', async (request, reply) => {
    const { symbol } = request.params
    state.received.push(symbol)
    onReceived()
    if (state.broken.has(symbol)) return reply.code(503).send({ message: 'down' })
    if (state.hold) {
      // Wait for an answer that never comes, until the client gives up on the request.
      await new Promise(resolve => reply.raw.once('close', resolve))
      state.closedUnanswered++
      return reply
    }
    return { symbol, price: 1 }
  })
  const url = await urlOf(app)
  t.teardown(() => closeApp(app))
  const receivedAtLeast = (count: number) => new Promise<void>(resolve => {
    onReceived = () => { if (state.received.length >= count) resolve() }
    onReceived()
  })
  return { url, state, receivedAtLeast }
}

t.test('a client that leaves aborts the fetches still in flight, all of them', async t => {
  const api = await upstream(t)
  api.state.hold = true
  const app = await build({ priceApiUrl: api.url, intervalMs: 10, timeoutMs: 60_000 })
  t.teardown(() => closeApp(app))
  const stream = await openStream(app, '/events')
  await api.receivedAtLeast(3)
  t.same(api.state.received.sort(), ['AAPL', 'GOOGL', 'MSFT'], 'the three fetches were in flight at once')
  await stream.close()
  await until(() => api.state.closedUnanswered >= 3, 5000, 'the waiting requests to be cancelled')
  t.equal(api.state.closedUnanswered, 3, 'each waiting request was cancelled, long before its 60 s timeout')
  t.equal(stream.events.length, 0)
})

t.test('an upstream failure becomes an upstream-error event, and the stream goes on', async t => {
  const api = await upstream(t)
  api.state.broken.add('GOOGL')
  const app = await build({ priceApiUrl: api.url, intervalMs: 10 })
  t.teardown(() => closeApp(app))
  const source = new EventSource(await urlOf(app) + '/events')
  t.teardown(() => source.close())
  const [failed] = await nextEvents(source, 'upstream-error', 1)
  t.same(JSON.parse(failed?.data), { message: 'GOOGL: the price API answered 503' })
  api.state.broken.clear()
  const [recovered] = await nextEvents(source, 'message', 1)
  t.same(JSON.parse(recovered?.data), { AAPL: 1, GOOGL: 1, MSFT: 1 })
  t.equal(source.readyState, EventSource.OPEN, 'on the same connection')
})

t.test('a round the API does not answer in time is an upstream-error event', async t => {
  const api = await upstream(t)
  api.state.hold = true
  const app = await build({ priceApiUrl: api.url, intervalMs: 10, timeoutMs: 50 })
  t.teardown(() => closeApp(app))
  const stream = await openStream(app, '/events')
  const [timedOut] = await stream.take(1)
  await stream.close()
  t.equal(timedOut?.event, 'upstream-error')
  t.same(JSON.parse(timedOut?.data ?? ''), { message: 'the price API did not answer within 50 ms' })
})

t.test('an unreachable API is an upstream-error event that names the reason', async t => {
  const gone = Fastify()
  const url = await urlOf(gone)
  await gone.close()
  const app = await build({ priceApiUrl: url, intervalMs: 10 })
  t.teardown(() => closeApp(app))
  const stream = await openStream(app, '/events')
  const [failed] = await stream.take(1)
  await stream.close()
  t.equal(failed?.event, 'upstream-error')
  t.same(JSON.parse(failed?.data ?? ''), { message: 'fetch failed (ECONNREFUSED)' })
})

t.test('with a channel, one producer publishes every round to it, upstream errors included, until the app closes', async t => {
  const api = await upstream(t)
  api.state.broken.add('MSFT')
  const app = await build({ priceApiUrl: api.url, intervalMs: 10, channel: 'prices' })
  t.teardown(() => closeApp(app))
  await app.ready()
  const rounds: Array<{ event: string | undefined, data: unknown }> = []
  for await (const message of app.sse.channel('prices').subscribe()) {
    rounds.push({ event: message.event, data: message.data })
    if (rounds.length === 1) api.state.broken.clear()
    if (rounds.at(-1)?.event === undefined) break
  }
  t.strictSame(rounds[0], { event: 'upstream-error', data: { message: 'MSFT: the price API answered 503' } })
  t.strictSame(rounds.at(-1), { event: undefined, data: { AAPL: 1, GOOGL: 1, MSFT: 1 } })
  await app.close()
  const asked = api.state.received.length
  await new Promise(resolve => setTimeout(resolve, 100))
  t.equal(api.state.received.length, asked, 'no round after the close')
})
