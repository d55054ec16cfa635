import t from 'tap'
import { Type } from 'typebox'
import { sseEvents } from '../../lib/index.js'
import { catalogOfResponse, compileCatalog } from '../../lib/events/catalog.js'
import { openStream } from '../../lib/testing.js'
import { buildApp } from '../fixtures/app.js'
import { logsOf } from '../fixtures/logs.js'
import { REDIS_URL, redisAvailable, uniquePrefix } from '../fixtures/redis.js'
import { until } from '../fixtures/wait.js'

// Issue 10, the adversarial review of declared events: each finding it reproduced, as a spec that
// failed before its fix.

const News = sseEvents({ headline: Type.Object({ title: Type.String() }) })

t.test('F1. a declared channel drops events another app published under names it does not declare (live and replayed), logged', async t => {
  if (!(await redisAvailable(t))) return
  const redisPrefix = uniquePrefix(t)
  const { app: declared, logs } = await buildApp(t, { redis: REDIS_URL, redisPrefix, heartbeat: false })
  const other = (await buildApp(t, { redis: REDIS_URL, redisPrefix })).app
  const news = declared.sse.channel('news', { events: News })
  declared.get('/news', { schema: { response: { 200: News } } }, (request, reply) =>
    reply.sse(news.subscribe({ lastEventId: request.lastEventId }) as never))
  const stream = await openStream(declared, '/news')
  await until(() => news.size === 1)
  const first = await other.sse.channel('news').publish({ event: 'headline', data: { title: 'a' } })
  await other.sse.channel('news').publish({ event: 'evil', data: { secret: 'x' } })
  await other.sse.channel('news').publish('an unnamed event, not declared either')
  await other.sse.channel('news').publish({ event: 'headline', data: { title: 'b' } })
  const events = await stream.take(2)
  t.strictSame(events.map(event => [event.event, event.data]), [['headline', '{"title":"a"}'], ['headline', '{"title":"b"}']])
  await stream.close()
  const again = await openStream(declared, '/news', { lastEventId: first })
  t.strictSame((await again.take(1)).map(event => event.data), ['{"title":"b"}'], 'the replay drops it too')
  await again.close()
  const dropped = logsOf(logs, 'sse declared channel dropped an event it does not declare').map(line => line.event)
  t.ok(dropped.includes('evil') && dropped.includes('message'), `named and unnamed undeclared events logged: ${dropped.join(', ')}`)
})

t.test('F2. a channel keeps its declaration after it was forgotten while idle', async t => {
  const { app } = await buildApp(t, { channelIdleTimeout: 40 })
  app.sse.channel('news', { events: News })
  await new Promise(resolve => setTimeout(resolve, 150))
  await t.rejects(app.sse.channel('news').publish({ event: 'evil', data: {} }), { code: 'FST_SSE_UNDECLARED_EVENT' })
  t.throws(() => app.sse.channel('news', { events: sseEvents({ other: Type.String() }) }), { code: 'FST_SSE_INVALID_EVENTS' })
})

t.test('F3. data that is a string goes through the schema\'s serializer unless the schema is text: the wire is what the document says', async t => {
  const Moves = sseEvents({
    move: Type.Union([Type.Literal('up'), Type.Literal('down')]),
    note: Type.Union([Type.String(), Type.Null()]),
    text: Type.String()
  })
  const catalog = catalogOfResponse(Moves)!
  t.equal(catalog.frame({ event: 'move', data: 'up' }, JSON.stringify), 'event: move\ndata: "up"\n\n', 'JSON, as documented')
  t.equal(catalog.frame({ event: 'note', data: 'hi' }, JSON.stringify), 'event: note\ndata: "hi"\n\n')
  t.equal(catalog.frame({ event: 'text', data: 'hi' }, JSON.stringify), 'event: text\ndata: hi\n\n', 'a text schema: the text')
  const { app } = await buildApp(t, { heartbeat: false })
  const channel = app.sse.channel('moves', { events: Moves })
  app.get('/moves', (request, reply) => reply.sse(channel.subscribe({ lastEventId: request.lastEventId })))
  const stream = await openStream(app, '/moves')
  await until(() => channel.size === 1)
  await channel.publish({ event: 'move', data: 'down' })
  t.strictSame((await stream.take(1)).map(event => event.data), ['"down"'], 'through a channel too')
  await stream.close()
})

t.test('F3b. through Redis, a string serialized as JSON reaches the other app as that JSON', async t => {
  if (!(await redisAvailable(t))) return
  const redisPrefix = uniquePrefix(t)
  const Moves = sseEvents({ move: Type.Union([Type.Literal('up'), Type.Literal('down')]) })
  const one = (await buildApp(t, { redis: REDIS_URL, redisPrefix, heartbeat: false })).app
  const two = (await buildApp(t, { redis: REDIS_URL, redisPrefix, heartbeat: false })).app
  two.get('/moves', (request, reply) => reply.sse(two.sse.channel('moves').subscribe({ lastEventId: request.lastEventId })))
  const stream = await openStream(two, '/moves')
  await until(() => two.sse.channel('moves').size === 1)
  await one.sse.channel('moves', { events: Moves }).publish({ event: 'move', data: 'up' })
  t.strictSame((await stream.take(1)).map(event => event.data), ['"up"'])
  await stream.close()
})

t.test('F4. declarations with validate do not share one validator store: the same $id twice compiles, nothing is kept per declaration', async t => {
  const Reading = { $id: 'Reading', type: 'object', properties: { c: { type: 'number' } } }
  t.doesNotThrow(() => sseEvents({ a: { ...Reading } }, { validate: true }))
  t.doesNotThrow(() => sseEvents({ b: { ...Reading } }, { validate: true }), 'a second schema with the same $id')
  t.throws(() => catalogOfResponse(sseEvents({ c: { ...Reading } }, { validate: true }))!.frame({ event: 'c', data: { c: 'x' } }, JSON.stringify),
    { code: 'FST_SSE_INVALID_DATA' }, 'and each validates')
})

t.test('F5. an object with an event key that is not a message is refused on a declared stream; a message-shaped unnamed event cannot be declared', async t => {
  const catalog = catalogOfResponse(sseEvents({ temperature: Type.Object({ c: Type.Number() }), message: Type.Object({ n: Type.Number() }) }))!
  t.throws(() => catalog.frame({ event: 'temperature', data: { c: 1 }, sensor: 'roof' }, JSON.stringify),
    { code: 'FST_SSE_INVALID_DATA', message: /sensor/ })
  t.throws(() => sseEvents({ message: Type.Object({ id: Type.String(), data: Type.Number() }) }),
    { code: 'FST_SSE_INVALID_EVENTS', message: /would be read as a message/ })
})

t.test('F6. a route with JSON under 200 and its stream under 2xx streams by its declaration', async t => {
  const { app } = await buildApp(t, { heartbeat: false })
  app.get('/mixed', {
    sse: true,
    schema: { response: { 200: { content: { 'application/json': { schema: { type: 'object' } } } }, '2xx': News } }
  }, async function * () {
    yield { event: 'headline', data: { title: 't', secret: 's' } } as never
    yield { event: 'evil', data: {} } as never
  })
  const stream = await openStream(app, '/mixed')
  await stream.ended
  t.strictSame(stream.events.map(event => event.data), ['{"title":"t"}'], 'serialized by the schema, the undeclared event refused')
})

t.test('F7. a hand-written itemSchema gets the same name rules as sseEvents()', async t => {
  const branch = (name: string) => ({ oneOf: [{ properties: { event: { const: name }, data: { type: 'string' } } }] })
  for (const name of ['a\nid: 666', '', 'sse-gap']) {
    t.throws(() => compileCatalog(branch(name), false), { code: 'FST_SSE_INVALID_EVENTS' }, JSON.stringify(name))
  }
  const catalog = compileCatalog(branch('ok'), false)
  t.throws(() => catalog.frame({ event: 'x\ny', data: 'z' }, JSON.stringify), { code: 'FST_SSE_UNDECLARED_EVENT', message: /"x\\ny"/ })
})

t.test('F8. a Redis body whose JSON text does not parse is delivered as its text, not dropped', async t => {
  if (!(await redisAvailable(t))) return
  const redisPrefix = uniquePrefix(t)
  const Raw = sseEvents({ raw: { type: 'object', properties: { s: { type: 'string', format: 'unsafe' } } } })
  const one = (await buildApp(t, { redis: REDIS_URL, redisPrefix, heartbeat: false })).app
  const two = (await buildApp(t, { redis: REDIS_URL, redisPrefix, heartbeat: false })).app
  two.get('/raw', (request, reply) => reply.sse(two.sse.channel('raw').subscribe({ lastEventId: request.lastEventId })))
  const stream = await openStream(two, '/raw')
  await until(() => two.sse.channel('raw').size === 1)
  await one.sse.channel('raw', { events: Raw }).publish({ event: 'raw', data: { s: 'say "hi"' } })
  t.strictSame((await stream.take(1)).map(event => event.data), ['{"s":"say "hi""}'], 'the same bytes as on the publishing app')
  await stream.close()
})

t.test('F9. changing a schema after sseEvents() changes neither the document nor the wire', async t => {
  const Data = { type: 'object', properties: { a: { type: 'number' } } } as { type: string, properties: Record<string, object> }
  const declared = sseEvents({ x: Data })
  Data.properties.b = { type: 'number' }
  const documented = (declared.content['text/event-stream'].itemSchema.oneOf as any)[0].properties.data.contentSchema
  t.strictSame(Object.keys(documented.properties), ['a'], 'the document is what was compiled')
  t.equal(catalogOfResponse(declared)!.frame({ event: 'x', data: { a: 1, b: 2 } }, JSON.stringify), 'event: x\ndata: {"a":1}\n\n')
})

t.test('F11. a named event without data is refused on a declared stream or channel: it would dispatch nothing', async t => {
  const catalog = catalogOfResponse(News)!
  t.throws(() => catalog.frame({ event: 'headline' }, JSON.stringify), { code: 'FST_SSE_INVALID_DATA', message: /needs data/ })
  t.equal(catalog.frame({ comment: 'hi' }, JSON.stringify), ': hi\n\n', 'a comment still goes')
  const { app } = await buildApp(t)
  await t.rejects(app.sse.channel('news', { events: News }).publish({ event: 'headline' } as never), { code: 'FST_SSE_INVALID_DATA' })
})
