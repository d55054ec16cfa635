import t from 'tap'
import { EventSource } from 'eventsource'
import { Type } from 'typebox'
import { GAP_EVENT, type ChannelMessage } from '../../lib/index.js'
import { sseEvents } from '../../lib/typebox.js'
import { openStream } from '../../lib/testing.js'
import { buildApp } from '../fixtures/app.js'
import { read } from '../fixtures/channels.js'
import { closeApp, urlOf } from '../fixtures/http.js'
import { logsOf } from '../fixtures/logs.js'
import { REDIS_URL, redisAvailable, uniquePrefix } from '../fixtures/redis.js'
import { until } from '../fixtures/wait.js'

// Declared events on routes and channels: serialized by their schemas, undeclared names and (when
// asked) invalid data refused with a clear error that ends only what it must.

const Reading = Type.Object({ celsius: Type.Number(), sensor: Type.String() })
const Weather = sseEvents({
  temperature: Reading,
  humidity: Type.Object({ percent: Type.Number() }),
  message: Type.String()
})
const Strict = sseEvents({ temperature: Reading }, { validate: true })

t.test('a { sse: true } route with declared events streams them, serialized by their schemas, to an EventSource', async t => {
  const { app } = await buildApp(t, { heartbeat: false })
  app.get('/weather', { sse: true, schema: { response: { 200: Weather } } }, async function * () {
    yield { id: 1, event: 'temperature', data: { sensor: 'roof', celsius: 21.5, secret: 'not declared, not sent' } } as const
    yield { id: 2, event: 'humidity', data: { percent: 40 } } as const
    yield 'the unnamed event'
  })
  const source = new EventSource(await urlOf(app) + '/weather')
  t.teardown(() => { source.close() })
  const received: Array<[string, string, string]> = []
  for (const type of ['temperature', 'humidity', 'message']) {
    source.addEventListener(type, event => { received.push([event.type, event.data, event.lastEventId]) })
  }
  await until(() => received.length === 3, 5000, 'three events')
  t.strictSame(received.map(([type, data]) => [type, data]), [
    ['temperature', '{"celsius":21.5,"sensor":"roof"}'],
    ['humidity', '{"percent":40}'],
    ['message', 'the unnamed event']
  ])
  t.strictSame(received.slice(0, 2).map(([, , id]) => id), ['1', '2'])
  source.close()
  await closeApp(app)
})

t.test('reply.sse() on a declared route keeps the declaration with stream options of its own', async t => {
  const { app } = await buildApp(t, { heartbeat: false })
  app.get('/reply', { sse: { retry: 100 }, schema: { response: { 200: Weather } } }, (_request, reply) =>
    reply.sse([{ event: 'humidity', data: { percent: 1, extra: true } }], { retry: 250 }))
  const stream = await openStream(app, '/reply')
  const [event] = await stream.take(1)
  t.equal(stream.retry, 250)
  t.strictSame([event?.event, event?.data], ['humidity', '{"percent":1}'])
  await stream.ended
})

t.test('a declaration under 2xx counts as the stream\'s', async t => {
  const { app } = await buildApp(t, { heartbeat: false })
  app.get('/any-success', { sse: true, schema: { response: { '2xx': Weather } } }, async function * () {
    yield { event: 'humidity', data: { percent: 5, extra: 1 } } as never
  })
  const stream = await openStream(app, '/any-success')
  await stream.ended
  t.strictSame(stream.events.map(event => event.data), ['{"percent":5}'])
})

t.test('an undeclared event ends its stream with FST_SSE_UNDECLARED_EVENT logged, after what came before; other streams go on', async t => {
  const { app, logs } = await buildApp(t, { heartbeat: false })
  let finalized = 0
  app.get('/mixed', { sse: true, schema: { response: { 200: Weather } } }, async function * () {
    try {
      yield { event: 'humidity', data: { percent: 1 } } as const
      yield { event: 'pressure', data: { hpa: 1013 } } as never
      yield { event: 'humidity', data: { percent: 2 } } as const
    } finally {
      finalized++
    }
  })
  app.get('/fine', { sse: true, schema: { response: { 200: Weather } } }, async function * () {
    for (let percent = 0; percent < 3; percent++) yield { event: 'humidity', data: { percent } } as const
  })
  const [mixed, fine] = await Promise.all([openStream(app, '/mixed'), openStream(app, '/fine')])
  await Promise.all([mixed.ended, fine.ended])
  t.strictSame(mixed.events.map(event => event.data), ['{"percent":1}'], 'the event before it, and nothing after')
  t.strictSame(fine.events.map(event => event.data), ['{"percent":0}', '{"percent":1}', '{"percent":2}'])
  t.equal(finalized, 1, 'the generator is finalized')
  const [end] = logsOf(logs, 'sse stream ended').filter(line => line.err !== undefined)
  t.equal((end?.err as { code?: string } | undefined)?.code, 'FST_SSE_UNDECLARED_EVENT')
  t.match((end?.err as { message?: string } | undefined)?.message, /"pressure" is not declared .*declared: temperature, humidity, message/)
})

t.test('a declared channel: publishes serialized by schema; undeclared events and invalid data are refused before anything is stored', async t => {
  const { app } = await buildApp(t, { heartbeat: false })
  const weather = app.sse.channel('weather', { events: Weather })
  t.equal(app.sse.channel('weather'), weather, 'the same channel, declared, by name')
  const strict = app.sse.channel('strict', { events: Strict })
  app.get('/weather', (request, reply) => reply.sse(weather.subscribe({ lastEventId: request.lastEventId })))
  const stream = await openStream(app, '/weather')
  const inProcess = read(weather.subscribe() as AsyncIterable<ChannelMessage>)

  const first = await weather.publish({ event: 'temperature', data: { celsius: 3, sensor: 'yard', extra: 1 } as never })
  await t.rejects(weather.publish({ event: 'fog', data: {} } as never), { code: 'FST_SSE_UNDECLARED_EVENT' })
  await t.rejects(strict.publish({ event: 'temperature', data: { celsius: 'hot', sensor: 'a' } as never }), { code: 'FST_SSE_INVALID_DATA' })
  const second = await weather.publishData('fine weather')
  const third = await strict.publish({ event: 'temperature', data: { celsius: 4, sensor: 'b' } })

  const events = await stream.take(2)
  t.strictSame(events.map(event => [event.id, event.event, event.data]), [
    [first, 'temperature', '{"celsius":3,"sensor":"yard"}'],
    [second, undefined, 'fine weather']
  ], 'only what was valid, framed by the schema')
  const messages = await inProcess.take(2)
  t.strictSame(messages[0]?.data, { celsius: 3, sensor: 'yard', extra: 1 }, 'in-process subscribers get the published value')
  t.ok(third, 'the strict channel published its valid event')
  const replay = await openStream(app, '/weather', { lastEventId: first })
  t.strictSame((await replay.take(1)).map(event => event.id), [second], 'history holds no hole and no refused event')
  await Promise.all([stream.close(), replay.close()])
  await inProcess.iterator.return?.()
})

t.test('a channel keeps its declaration: another one is refused; options that are not a declaration are refused', async t => {
  const { app } = await buildApp(t)
  app.sse.channel('one', { events: Weather })
  t.doesNotThrow(() => app.sse.channel('one', { events: Weather }), 'the same declaration again')
  t.doesNotThrow(() => app.sse.channel('one', {}), 'no declaration: the channel as it is')
  t.throws(() => app.sse.channel('one', { events: Strict }), { code: 'FST_SSE_INVALID_EVENTS', message: /channel one is declared with other events/ })
  t.throws(() => app.sse.channel('two', { events: { temperature: Reading } as never }), { code: 'FST_SSE_INVALID_EVENTS', message: /declared with sseEvents/ })
  t.throws(() => app.sse.channel('three', null as never), { code: 'FST_SSE_INVALID_OPTION' })
})

t.test('a declared route streaming a channel passes its events and gap notices as they were framed', async t => {
  const { app } = await buildApp(t, { heartbeat: false, history: 1 })
  const feed = app.sse.channel('feed', { events: Weather })
  app.get('/feed', { schema: { response: { 200: Weather } } }, (request, reply) =>
    reply.sse(feed.subscribe({ lastEventId: request.lastEventId }) as never))
  const old = await feed.publishData('a')
  await feed.publishData('b')
  await feed.publishData('c')
  // History keeps one event: b is gone.
  const stream = await openStream(app, '/feed', { lastEventId: old })
  const [gap, c] = await stream.take(2)
  t.equal(gap?.event, GAP_EVENT)
  t.equal(c?.data, 'c')
  await stream.close()
})

t.test('declared channels through Redis: another app receives the schema\'s JSON, parsed back for in-process subscribers', async t => {
  if (!(await redisAvailable(t))) return
  const redisPrefix = uniquePrefix(t)
  const publisher = (await buildApp(t, { redis: REDIS_URL, redisPrefix })).app
  const receiver = (await buildApp(t, { redis: REDIS_URL, redisPrefix })).app
  receiver.get('/weather', (request, reply) => reply.sse(receiver.sse.channel('weather').subscribe({ lastEventId: request.lastEventId })))
  const stream = await openStream(receiver, '/weather')
  const inProcess = read(receiver.sse.channel('weather').subscribe())
  await until(() => receiver.sse.channel('weather').size === 2, 5000, 'both subscribed')
  const channel = publisher.sse.channel('weather', { events: Weather })
  await t.rejects(channel.publish({ event: 'fog', data: {} } as never), { code: 'FST_SSE_UNDECLARED_EVENT' })
  const id = await channel.publish({ event: 'temperature', data: { sensor: 'mast', celsius: -2, extra: 'x' } as never })
  const [event] = await stream.take(1)
  t.strictSame([event?.id, event?.event, event?.data], [id, 'temperature', '{"celsius":-2,"sensor":"mast"}'])
  const [message] = await inProcess.take(1)
  t.strictSame(message?.data, { celsius: -2, sensor: 'mast' }, 'what the schema wrote, parsed back')
  await inProcess.iterator.return?.()
  await stream.close()
})
