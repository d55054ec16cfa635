import t, { type Test } from 'tap'
import { EventSource } from 'eventsource'
import type { FastifyInstance } from 'fastify'
import { CURSOR_EVENT } from '../../lib/index.js'
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
  await first.take(1) // where the stream starts in every channel
  for (const [i, name] of channels.entries()) await app.sse.channel(name).publish(texts[i])
  await first.take(texts.length)
  await first.close()
  return first.lastEventId!
}

t.test('events of every channel, interleaved in publish order, named after their channel; each id is every channel\'s position', async t => {
  const { app } = await buildApp(t, { heartbeat: false })
  panelsRoute(app)
  const w0 = await app.sse.channel('weather').publish('before')
  const stream = await openStream(app, '/panels')
  const [start] = await stream.take(1)
  t.equal(PANELS.map(name => app.sse.channel(name).size).join(), '1,1,1', 'three subscriptions')
  t.strictSame([start!.event, start!.data], [CURSOR_EVENT, ''], 'first, where the stream starts: an id, empty data')
  const position = new URLSearchParams(start!.id)
  t.strictSame([...position.keys()], PANELS, 'in every channel')
  t.equal(position.get('weather'), w0, 'a channel that has events: its newest')
  const w1 = await app.sse.channel('weather').publish({ t: 21 })
  const p1 = await app.sse.channel('prices').publish({ event: 'tick', data: { acme: 100 } })
  const w2 = await app.sse.channel('weather').publish({ event: 'alert', data: 'storm' })
  const n1 = await app.sse.channel('news').publish('hello')
  const events = await stream.take(4)
  t.strictSame(named(events), [['weather', '{"t":21}'], ['prices.tick', '{"acme":100}'], ['weather.alert', 'storm'], ['news', 'hello']])
  const p0 = position.get('prices')!
  const n0 = position.get('news')!
  t.strictSame(events.map(event => event.id), [
    `weather=${w1}&prices=${p0}&news=${n0}`,
    `weather=${w1}&prices=${p1}&news=${n0}`,
    `weather=${w2}&prices=${p1}&news=${n0}`,
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
  t.strictSame(named(await again.take(1)), [['news', 'n1']], 'then live')
  await again.close()
})

t.test('a channel that has sent the client nothing is resumed too: what it published while the client was away comes back', async t => {
  const { app } = await buildApp(t, { heartbeat: false })
  panelsRoute(app)
  // Only weather spoke while the client was here; prices and news never did (news has no event at all yet).
  await app.sse.channel('prices').publish('p0, before the client came')
  const lastId = await visit(app, ['weather'], ['w1'])
  await app.sse.channel('news').publish('n1')
  await app.sse.channel('prices').publish('p1')
  await app.sse.channel('news').publish('n2')
  const again = await openStream(app, '/panels', { lastEventId: lastId })
  t.strictSame(byChannel(await again.take(3)), { news: ['n1', 'n2'], prices: ['p1'] }, 'each once, none from before the first visit, no gap notice')
  await app.sse.channel('weather').publish('w2')
  t.strictSame(named(await again.take(1)), [['weather', 'w2']], 'then live')
  t.equal(again.events.filter(event => event.event === CURSOR_EVENT).length, 0, 'a client whose id holds every channel is not sent a cursor again')
  await again.close()
})

t.test('a client that got nothing but where its stream starts resumes every channel from there', async t => {
  const { app } = await buildApp(t, { heartbeat: false })
  panelsRoute(app)
  const first = await openStream(app, '/panels')
  await first.take(1)
  await first.close()
  await app.sse.channel('weather').publish('w1')
  await app.sse.channel('news').publish('n1')
  const again = await openStream(app, '/panels', { lastEventId: first.lastEventId })
  t.strictSame(byChannel(await again.take(2)), { weather: ['w1'], news: ['n1'] })
  await again.close()
})

t.test('an id that lacks a channel (the route gained one) gets a cursor with the new channel\'s position, the others as the id had them', async t => {
  const { app } = await buildApp(t, { heartbeat: false })
  const w1 = await app.sse.channel('weather').publish('w1')
  const n0 = await app.sse.channel('news').publish('n0')
  panelsRoute(app)
  const again = await openStream(app, '/panels', { lastEventId: `weather=${w1}` })
  const [start] = await again.take(1)
  t.equal(start!.event, CURSOR_EVENT)
  const position = new URLSearchParams(start!.id)
  t.equal(position.get('weather'), w1, 'as the id had it')
  t.equal(position.get('news'), n0, 'where the new channel stands')
  await app.sse.channel('news').publish('n1')
  t.strictSame(named(await again.take(1)), [['news', 'n1']], 'only what came after the stream started')
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
  t.throws(() => app.sse.multiplex([CURSOR_EVENT, 'a']), { code: 'FST_SSE_INVALID_CHANNEL' }, 'its events would pass for the stream\'s cursor')
  t.throws(() => app.sse.multiplex(['\uD800x', 'a']), { code: 'FST_SSE_INVALID_CHANNEL', message: /lone surrogate/ },
    'a name that could not be put in an id (it failed every stream at its cursor)')
  t.doesNotThrow(() => app.sse.multiplex(['user.1', 'user.2', 'a.b.c']), 'dots are fine where no name is another\'s prefix')
  t.throws(() => app.sse.multiplex(['x'.repeat(201)]), { code: 'FST_SSE_INVALID_CHANNEL' }, 'the channel\'s own limits')
  app.get('/bad', (_request, reply) => reply.sse(app.sse.multiplex(['ok', ''])))
  const response = await app.inject({ url: '/bad', headers: { accept: 'text/event-stream' } })
  t.equal(response.statusCode, 500)
  t.equal(response.json().code, 'FST_SSE_INVALID_CHANNEL')
})

/** Two apps sharing a Redis, each with the /panels route. */
async function twoInstances (t: Test): Promise<[FastifyInstance, FastifyInstance]> {
  const redisPrefix = uniquePrefix(t)
  const apps: FastifyInstance[] = []
  for (let n = 0; n < 2; n++) {
    const { app } = await buildApp(t, { redis: REDIS_URL, redisPrefix, heartbeat: false })
    panelsRoute(app)
    apps.push(app)
  }
  return apps as [FastifyInstance, FastifyInstance]
}

t.test('through Redis, a client resumes every channel on another instance', async t => {
  if (!(await redisAvailable(t))) return
  const [one, two] = await twoInstances(t)
  const lastId = await visit(one, ['weather', 'news'], ['w1', 'n1'])
  await two.sse.channel('news').publish('n2')
  await one.sse.channel('weather').publish('w2')
  const again = await openStream(two, '/panels', { lastEventId: lastId })
  t.strictSame(named(await again.take(2)).sort(), [['news', 'n2'], ['weather', 'w2']], 'each channel from its own position')
  await two.sse.channel('prices').publish('p1')
  t.strictSame(named(await again.take(1)), [['prices', 'p1']])
  await again.close()
})

t.test('through Redis, a channel that has sent the client nothing, even one with no stream in Redis yet, is resumed on another instance', async t => {
  if (!(await redisAvailable(t))) return
  const [one, two] = await twoInstances(t)
  await one.sse.channel('prices').publish('p0, before the client came')
  const lastId = await visit(one, ['weather'], ['w1'])
  t.match(new URLSearchParams(lastId).get('news'), /^\d+-\d+$/, 'news had no stream: it has one now, where the client stands')
  await two.sse.channel('news').publish('n1')
  await one.sse.channel('prices').publish('p1')
  await two.sse.channel('news').publish('n2')
  const again = await openStream(two, '/panels', { lastEventId: lastId })
  t.strictSame(byChannel(await again.take(3)), { news: ['n1', 'n2'], prices: ['p1'] }, 'each once, no gap notice')
  await again.close()
})

t.test('a set of channels whose id could grow past maxLastEventIdLength is refused when the source is made: a client\'s id would be ignored, and what it missed lost without notice', async t => {
  const names = Array.from({ length: 12 }, (_, i) => `a-channel-with-a-rather-long-name-${i}`)
  const { app } = await buildApp(t)
  t.throws(() => app.sse.multiplex(names), { code: 'FST_SSE_INVALID_OPTION', message: /maxLastEventIdLength.*raise it to 817/ })
  t.doesNotThrow(() => app.sse.multiplex(names.slice(0, 7)), 'seven fit in 512 bytes')
  const { app: raised } = await buildApp(t, { maxLastEventIdLength: 817, heartbeat: false })
  raised.get('/many', (_request, reply) => reply.sse(raised.sse.multiplex(names)))
  const first = await openStream(raised, '/many')
  await first.take(1)
  await first.close()
  await raised.sse.channel(names[11]!).publish('while away')
  const again = await openStream(raised, '/many', { lastEventId: first.lastEventId })
  t.strictSame(named(await again.take(1)), [[names[11], 'while away']], 'raised: the id is taken, and the channel resumed')
  await again.close()
})
