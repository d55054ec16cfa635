import t from 'tap'
import { EventSource } from 'eventsource'
import type { FastifyInstance } from 'fastify'
import { openStream, type TestEvent } from '../../lib/testing.js'
import { buildApp } from '../fixtures/app.js'
import { closeApp, urlOf } from '../fixtures/http.js'
import { REDIS_URL, redisAvailable, uniquePrefix } from '../fixtures/redis.js'
import { until } from '../fixtures/wait.js'

// Several channels on one stream (app.sse.multiplex): events interleaved as published, named after
// their channel, and one Last-Event-ID that resumes every channel exactly.

const PANELS = ['weather', 'prices', 'news']

function panelsRoute (app: FastifyInstance): void {
  app.get('/panels', (_request, reply) => reply.sse(app.sse.multiplex(PANELS)))
}

const named = (events: TestEvent[]) => events.map(event => [event.event, event.data])

/** Each channel's events in the order received (a gap notice as `sse-gap`). */
function byChannel (events: TestEvent[]): Record<string, string[]> {
  const channels: Record<string, string[]> = {}
  for (const [event, data] of named(events)) {
    const [channel, own] = event!.split('.') as [string, string | undefined]
    ;(channels[channel] ??= []).push(own ?? data!)
  }
  return channels
}

/** A first visit to /panels of `app` that receives `texts` (published on `channels`) and leaves: its last id. */
async function visit (app: FastifyInstance, channels: string[], texts: string[]): Promise<string> {
  const first = await openStream(app, '/panels')
  await until(() => app.sse.channel('news').size === 1)
  for (const [i, name] of channels.entries()) await app.sse.channel(name).publish(texts[i])
  await first.take(texts.length)
  await first.close()
  return first.lastEventId!
}

t.test('events of every channel, interleaved in publish order, named after their channel; each id is every channel\'s position', async t => {
  const { app } = await buildApp(t, { heartbeat: false })
  panelsRoute(app)
  const stream = await openStream(app, '/panels')
  await until(() => PANELS.every(name => app.sse.channel(name).size === 1), 2000, 'three subscriptions')
  const w1 = await app.sse.channel('weather').publish({ t: 21 })
  const p1 = await app.sse.channel('prices').publish({ event: 'tick', data: { acme: 100 } })
  const w2 = await app.sse.channel('weather').publish({ event: 'alert', data: 'storm' })
  const n1 = await app.sse.channel('news').publish('hello')
  const events = await stream.take(4)
  t.strictSame(named(events), [['weather', '{"t":21}'], ['prices.tick', '{"acme":100}'], ['weather.alert', 'storm'], ['news', 'hello']])
  t.strictSame(events.map(event => event.id), [
    `weather=${w1}`,
    `weather=${w1}&prices=${p1}`,
    `weather=${w2}&prices=${p1}`,
    `weather=${w2}&prices=${p1}&news=${n1}`
  ])
  await stream.close()
  t.strictSame(PANELS.map(name => app.sse.channel(name).size), [0, 0, 0], 'every subscription ended with the stream')
  t.equal(app.sse.streams, 0)
})

t.test('a client that comes back with the last id gets exactly what each channel published meanwhile, then live events', async t => {
  const { app } = await buildApp(t, { heartbeat: false })
  panelsRoute(app)
  const lastId = await visit(app, ['weather', 'prices'], ['w1', 'p1'])
  // Away: each channel moves on, one of them not at all.
  for (const text of ['w2', 'w3']) await app.sse.channel('weather').publish(text)
  await app.sse.channel('prices').publish('p2')
  const again = await openStream(app, '/panels', { lastEventId: lastId })
  // Each channel's replay in its order; how two channels' replays interleave is not said.
  t.strictSame(byChannel(await again.take(3)), { weather: ['w2', 'w3'], prices: ['p2'] }, 'what it missed, each once')
  await app.sse.channel('news').publish('n1')
  t.strictSame(named(await again.take(1)), [['news', 'n1']], 'then live, from a channel it had no position in')
  await again.close()
})

t.test('a channel whose missed events are gone says so on its own (channel.sse-gap), the others resume as usual', async t => {
  const { app } = await buildApp(t, { heartbeat: false, history: 2 })
  panelsRoute(app)
  const lastId = await visit(app, ['weather', 'prices'], ['w1', 'p1'])
  for (const text of ['w2', 'w3', 'w4']) await app.sse.channel('weather').publish(text)
  await app.sse.channel('prices').publish('p2')
  const again = await openStream(app, '/panels', { lastEventId: lastId })
  const events = await again.take(4)
  t.strictSame(byChannel(events), { weather: ['sse-gap', 'w3', 'w4'], prices: ['p2'] })
  await again.close()
})

t.test('an EventSource listens per channel and, each time the server ends the stream, resumes every channel: each channel\'s events once, in order', async t => {
  // The stream ends every 300 to 400 ms (maxLifetime); the EventSource comes back by itself with its last id.
  const { app } = await buildApp(t, { heartbeat: false, retry: 50, maxLifetime: 400 })
  let served = 0
  app.get('/panels', (_request, reply) => {
    served++
    return reply.sse(app.sse.multiplex(PANELS))
  })
  const source = new EventSource(await urlOf(app) + '/panels')
  t.teardown(() => { source.close() })
  const seen: string[] = []
  for (const name of PANELS) source.addEventListener(name, event => { seen.push(`${name}:${event.data}`) })
  await until(() => app.sse.channel('news').size === 1, 5000, 'the EventSource to subscribe')
  const published: string[] = []
  for (let i = 0; i < 45; i++) {
    const name = PANELS[i % 3]!
    await app.sse.channel(name).publish(String(i))
    published.push(`${name}:${i}`)
    await new Promise(resolve => setTimeout(resolve, 40))
  }
  await until(() => seen.length >= published.length, 5000, 'every event')
  t.ok(served >= 3, `the stream was served ${served} times`)
  // Each channel in its own order; across channels a replay comes channel by channel.
  const ofChannel = (events: string[], name: string) => events.filter(event => event.startsWith(name + ':'))
  for (const name of PANELS) t.strictSame(ofChannel(seen, name), ofChannel(published, name), `${name}: every event once, in order, across every reconnection`)
  t.equal(seen.length, published.length, 'nothing more')
  source.close()
  await closeApp(app)
})

t.test('names are checked when the source is made: a bad one fails the handler, before any stream', async t => {
  const { app } = await buildApp(t)
  t.throws(() => app.sse.multiplex([]), { code: 'FST_SSE_INVALID_CHANNEL' })
  t.throws(() => app.sse.multiplex('weather' as never), { code: 'FST_SSE_INVALID_CHANNEL' })
  t.throws(() => app.sse.multiplex(['a', 'a']), { code: 'FST_SSE_INVALID_CHANNEL', message: /each channel once/ })
  t.throws(() => app.sse.multiplex(['a\nevent: x']), { code: 'FST_SSE_INVALID_EVENT' }, 'a name that would inject a field')
  t.throws(() => app.sse.multiplex([42 as never]), { code: 'FST_SSE_INVALID_CHANNEL' })
  // Event names must tell channels apart: channel a's event b and channel a.b would both be `a.b`, and
  // a channel a.sse-gap would pass for a's gap notice (adversarial review).
  t.throws(() => app.sse.multiplex(['a', 'a.b']), { code: 'FST_SSE_INVALID_CHANNEL', message: /a\.b.*a/ })
  t.throws(() => app.sse.multiplex(['a.sse-gap', 'a']), { code: 'FST_SSE_INVALID_CHANNEL' })
  t.doesNotThrow(() => app.sse.multiplex(['user.1', 'user.2', 'a.b.c']), 'dots are fine where no name is another\'s prefix')
  t.throws(() => app.sse.multiplex(['x'.repeat(201)]), { code: 'FST_SSE_INVALID_CHANNEL' }, 'the channel\'s own limits')
  app.get('/bad', (_request, reply) => reply.sse(app.sse.multiplex(['ok', ''])))
  const response = await app.inject({ url: '/bad', headers: { accept: 'text/event-stream' } })
  t.equal(response.statusCode, 500)
  t.equal(response.json().code, 'FST_SSE_INVALID_CHANNEL')
})

t.test('through Redis, a client resumes every channel on another instance', async t => {
  if (!(await redisAvailable(t))) return
  const redisPrefix = uniquePrefix(t)
  const one = (await buildApp(t, { redis: REDIS_URL, redisPrefix, heartbeat: false })).app
  const two = (await buildApp(t, { redis: REDIS_URL, redisPrefix, heartbeat: false })).app
  panelsRoute(one)
  panelsRoute(two)
  const lastId = await visit(one, ['weather', 'news'], ['w1', 'n1'])
  await two.sse.channel('news').publish('n2')
  await one.sse.channel('weather').publish('w2')
  const again = await openStream(two, '/panels', { lastEventId: lastId })
  t.strictSame(named(await again.take(2)).sort(), [['news', 'n2'], ['weather', 'w2']], 'each channel from its own position')
  await two.sse.channel('prices').publish('p1')
  t.strictSame(named(await again.take(1)), [['prices', 'p1']])
  await again.close()
})
