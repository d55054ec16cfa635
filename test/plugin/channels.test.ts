import t from 'tap'
import { EventSource } from 'eventsource'
import { GAP_EVENT } from '../../lib/index.js'
import { openStream } from '../../lib/testing.js'
import { buildApp } from '../fixtures/app.js'
import { bodyOf, rawGet, urlOf } from '../fixtures/http.js'
import { channelRoute as route, publishMany } from '../fixtures/channels.js'
import { until } from '../fixtures/wait.js'

// Channels over real HTTP, in memory (the default): the one-line route, many clients, EventSource.

t.test('1,000 subscribers on real HTTP connections receive all of 100 events, in order, exactly once, serialized once each', async t => {
  let serialized = 0
  const { app } = await buildApp(t, { serialize: value => { serialized++; return JSON.stringify(value) } })
  route(app, 'feed')
  const channel = app.sse.channel('feed')
  const streams = []
  for (let i = 0; i < 1000; i++) streams.push(await openStream(app, '/feed'))
  t.equal(channel.size, 1000)
  t.equal(app.sse.streams, 1000)
  const ids: string[] = []
  for (let n = 0; n < 100; n++) {
    ids.push(await channel.publish({ n, text: 'the same bytes for everyone' }))
    // Let the streams write now and then, as a real publisher's pace would.
    if (n % 10 === 9) await new Promise(resolve => setImmediate(resolve))
  }
  const expected = ids.map((id, n) => [id, JSON.stringify({ n, text: 'the same bytes for everyone' })])
  const received = await Promise.all(streams.map(stream => stream.take(100, 30_000)))
  t.ok(received.every(events => events.length === 100 &&
    events.every((event, i) => event.id === expected[i]![0] && event.data === expected[i]![1])),
  'every client: all 100 events, in publish order, each once, with the same data')
  t.equal(serialized, 100, 'one serialization per publish, not per client')
  await Promise.all(streams.map(stream => stream.close()))
  t.ok(streams.every(stream => stream.events.length === 100), 'and nothing more')
  t.equal(channel.size, 0, 'every subscription ended with its stream')
})

t.test('every stream writes the same bytes for an event', async t => {
  const { app } = await buildApp(t, { heartbeat: false })
  route(app, 'bytes')
  const base = await urlOf(app)
  const clients = await Promise.all([1, 2, 3].map(() => rawGet(base + '/bytes')))
  const bodies = clients.map(() => '')
  clients.forEach(({ response }, i) => {
    response.setEncoding('utf8')
    response.on('data', chunk => { bodies[i] += chunk })
  })
  const id = await app.sse.channel('bytes').publish({ event: 'update', data: { a: [1, 2] }, comment: 'c' })
  await until(() => bodies.every(body => body.endsWith('\n\n')), 5000, 'the event on every client')
  t.same(bodies, Array(3).fill(`: c\nid: ${id}\nevent: update\ndata: {"a":[1,2]}\n\n`))
  for (const { request } of clients) request.destroy()
})

t.test('events published in one turn reach every stream in one piece, in order, whole', async t => {
  const { app } = await buildApp(t, { heartbeat: false })
  route(app, 'burst')
  const base = await urlOf(app)
  const clients = await Promise.all([1, 2, 3].map(() => rawGet(base + '/burst')))
  const bodies = clients.map(() => '')
  clients.forEach(({ response }, i) => {
    response.setEncoding('utf8')
    response.on('data', chunk => { bodies[i] += chunk })
  })
  const channel = app.sse.channel('burst')
  // One turn: every stream has the same three events waiting when its flush comes.
  const ids = await Promise.all(['one', 'two', 'thrée'].map(data => channel.publish(data)))
  const expected = ids.map((id, i) => `id: ${id}\ndata: ${['one', 'two', 'thrée'][i]}\n\n`).join('')
  await until(() => bodies.every(body => body.length >= expected.length), 5000, 'the burst on every client')
  t.same(bodies, Array(3).fill(expected))
  for (const { request } of clients) request.destroy()
})

t.test('a generator that yields channel messages and values of its own in one turn keeps their order', async t => {
  const { app } = await buildApp(t, { heartbeat: false })
  const channel = app.sse.channel('mixed')
  const before = await channel.publish('before')
  const first = await channel.publish('kept 1')
  const second = await channel.publish('kept 2')
  app.get('/mixed', (request, reply) => reply.sse(async function * () {
    // Replayed from history: prepared messages, handed out in the same turn as the values after them.
    let replayed = 0
    for await (const message of channel.subscribe({ lastEventId: before })) {
      yield message
      if (++replayed === 2) break
    }
    yield 'own 1'
    yield { event: 'own', data: 'own 2' }
  }))
  const { response } = await rawGet(await urlOf(app) + '/mixed')
  const body = await bodyOf(response)
  t.equal(body, `id: ${first}\ndata: kept 1\n\nid: ${second}\ndata: kept 2\n\ndata: own 1\n\nevent: own\ndata: own 2\n\n`)
})

t.test(`an EventSource that loses its connection resumes with Last-Event-ID; past the history it gets a "${GAP_EVENT}" event`, async t => {
  const { app } = await buildApp(t, { history: 3, retry: 20 })
  const replies = route(app, 'news')
  const channel = app.sse.channel('news')
  const source = new EventSource(await urlOf(app) + '/news')
  t.teardown(() => source.close())
  const messages: string[] = []
  const gaps: Array<{ lastEventId: string, data: string }> = []
  source.onmessage = event => { messages.push(event.lastEventId) }
  source.addEventListener(GAP_EVENT, event => { gaps.push({ lastEventId: event.lastEventId, data: event.data }) })
  await new Promise(resolve => { source.onopen = resolve })
  const ids = await publishMany(channel, 2)
  await until(() => messages.length === 2, 5000, 'the first events')

  // Cut off, and the history covers what it misses: every event, once.
  replies[0]!.raw.destroy()
  ids.push(...await publishMany(channel, 2, 2))
  await until(() => messages.length === 4, 5000, 'the missed events')
  t.same(messages, ids, 'resumed without loss')
  t.same(gaps, [])

  // Cut off again, and five events go by: more than the history keeps.
  await until(() => replies.length === 2, 5000, 'the second connection')
  replies[1]!.raw.destroy()
  await until(() => channel.size === 0, 5000, 'the second subscription to end')
  ids.push(...await publishMany(channel, 5, 4))
  await until(() => messages.length === 7, 5000, 'what is kept')
  t.same(gaps, [{ lastEventId: ids[3], data: JSON.stringify({ lastEventId: ids[3] }) }],
    'told what was lost, as a named event the client listens for')
  t.same(messages.slice(4), ids.slice(6), 'then every event still kept')
})

t.test('app.sse.channel() refuses a name that is not a string of 1 to 200 characters', async t => {
  const { app } = await buildApp(t)
  for (const name of ['', 'x'.repeat(201), 42, null, undefined]) {
    t.throws(() => app.sse.channel(name as string), { code: 'FST_SSE_INVALID_CHANNEL' }, String(name).slice(0, 10))
  }
  t.throws(() => app.sse.channel('y'.repeat(300)), { message: /got "y{40}\.\.\."/ }, 'a long name is cut short in the message')
  t.equal(app.sse.channel('x'.repeat(200)).name.length, 200)
})

t.test('app.close() ends every channel stream promptly', async t => {
  const { app } = await buildApp(t)
  route(app, 'closing')
  const streams = await Promise.all(Array.from({ length: 100 }, () => openStream(app, '/closing')))
  const started = Date.now()
  await app.close()
  t.ok(Date.now() - started < 2000, `closed in ${Date.now() - started} ms`)
  await Promise.all(streams.map(stream => stream.ended))
  t.equal(app.sse.channel('closing').size, 0)
})
