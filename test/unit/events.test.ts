import t from 'tap'
import { Type } from 'typebox'
import { sseEvents } from '../../lib/index.js'
import { sseEvents as typeboxEvents } from '../../lib/typebox.js'
import { catalogOfResponse, compileCatalog, EventCatalog } from '../../lib/events/catalog.js'
import { prepare } from '../../lib/frame.js'
import { bytesOf, readAsSpec } from '../fixtures/event-stream-readers.js'

// lib/events: a declaration (`sseEvents()`) becomes an OpenAPI 3.2 item schema, and that item schema
// becomes the serializers and checks every declared stream and channel uses.

const Reading = Type.Object({ celsius: Type.Number(), sensor: Type.String() })
const json = JSON.stringify
const catalogOf = (response: unknown): EventCatalog => catalogOfResponse(response)!

t.test('the declaration is a 200 response of text/event-stream with an OpenAPI 3.2 itemSchema, one branch per event', async t => {
  const response = sseEvents({ temperature: Reading, message: Type.String() })
  const media = response.content['text/event-stream']
  t.equal(response.description, 'A stream of server-sent events')
  t.strictSame(media.schema, { type: 'array', items: media.itemSchema }, 'the whole stream: an array of events')
  t.notOk('~unsafe' in media.schema, 'the type-only property is not in the JSON')
  t.strictSame(media.itemSchema, {
    type: 'object',
    properties: {
      event: { type: 'string' },
      data: { type: 'string' },
      id: { type: 'string' },
      retry: { type: 'integer', minimum: 0 }
    },
    required: ['data'],
    oneOf: [
      {
        properties: { event: { const: 'temperature' }, data: { contentMediaType: 'application/json', contentSchema: Reading } },
        required: ['event']
      },
      // The unnamed event may come without an `event:` line; text data is documented as the text it is.
      { properties: { event: { const: 'message' }, data: Type.String() } }
    ]
  })
  t.equal(sseEvents({ a: Reading }, { description: 'Readings' }).description, 'Readings')
  t.equal(typeboxEvents({ a: Reading }).content['text/event-stream'].itemSchema.type, 'object', 'the TypeBox entry is the same function')
})

t.test('a declaration that cannot be right is refused when it is made, with FST_SSE_INVALID_EVENTS', async t => {
  const invalid = { code: 'FST_SSE_INVALID_EVENTS' }
  t.throws(() => sseEvents(null as never), { ...invalid, message: /pass an object of event name to data schema; got null/ })
  t.throws(() => sseEvents([] as never), invalid)
  t.throws(() => sseEvents({}), { ...invalid, message: /at least one event/ })
  t.throws(() => sseEvents({ 'a\nb': Reading }), { ...invalid, message: /not an event name/ })
  t.throws(() => sseEvents({ '': Reading }), { ...invalid, message: /not an event name/ })
  t.throws(() => sseEvents({ 'sse-gap': Reading }), { ...invalid, message: /reserved/ })
  t.throws(() => sseEvents({ a: 'string' as never }), { ...invalid, message: /must be a JSON schema object; got "string"/ })
  t.throws(() => sseEvents({ a: [] as never }), invalid)
  t.throws(() => sseEvents({ a: { type: 'object', default: () => ({}) } }), { ...invalid, message: /the data schema of a must be JSON/ })
  t.throws(() => sseEvents({ a: { type: 'no-such-type' } }), { ...invalid, message: /the data schema of a does not compile/ })
  t.throws(() => sseEvents({ a: { type: 'object', properties: { b: { $ref: '#/nowhere' } } } }),
    { ...invalid, message: /the data schema of a does not compile/ }, 'fast-json-stringify refuses it')
  const discriminated = { type: 'object', discriminator: { propertyName: 'kind' } }
  t.doesNotThrow(() => sseEvents({ a: discriminated }), 'fast-json-stringify does not read a discriminator')
  t.throws(() => sseEvents({ a: { ...discriminated } }, { validate: true }),
    { ...invalid, message: /the data schema of a does not compile/ }, 'the validator does')
})

t.test('a hand-written item schema in the same shape declares events too; one without branches declares none', async t => {
  const itemSchema = { oneOf: [{ properties: { event: { const: 'tick' }, data: { contentMediaType: 'application/json', contentSchema: { type: 'integer' } } } }] }
  const catalog = catalogOf({ content: { 'text/event-stream': { schema: {}, itemSchema } } })
  t.equal(catalog.frame({ event: 'tick', data: 7 }, json), 'event: tick\ndata: 7\n\n')
  t.equal(catalogOfResponse({ content: { 'text/event-stream': { schema: {}, itemSchema: { type: 'object' } } } }), undefined)
  t.equal(catalogOfResponse({ content: { 'application/json': { schema: {} } } }), undefined)
  t.equal(catalogOfResponse(undefined), undefined)
  t.throws(() => compileCatalog({ oneOf: [] }, false), { code: 'FST_SSE_INVALID_EVENTS', message: /non-empty oneOf/ })
  t.throws(() => compileCatalog({ oneOf: [{ properties: { data: {} } }] }, false), { code: 'FST_SSE_INVALID_EVENTS', message: /must name its event/ })
  t.throws(() => compileCatalog({ oneOf: [{ properties: { event: { const: 'a' }, data: { contentSchema: true } } }] }, false),
    { code: 'FST_SSE_INVALID_EVENTS', message: /must be a JSON schema object/ })
})

t.test('compiled once: the same declaration, and the same data schema in two declarations, share their serializer', async t => {
  const response = sseEvents({ temperature: Reading })
  t.equal(catalogOf(response), catalogOf(response), 'one catalog per declaration')
  const frames = [sseEvents({ a: Reading }), sseEvents({ b: Reading })]
    .map((declared, i) => catalogOf(declared).frame({ event: i === 0 ? 'a' : 'b', data: { celsius: 1, sensor: 's' } }, json))
  t.strictSame(frames, ['event: a\ndata: {"celsius":1,"sensor":"s"}\n\n', 'event: b\ndata: {"celsius":1,"sensor":"s"}\n\n'])
})

t.test('frames declared events as the plugin frames any event, with the schema\'s serializer', async t => {
  const catalog = catalogOf(sseEvents({ temperature: Reading, message: Type.Object({ n: Type.Integer() }) }))
  const frame = catalog.frame({ id: 3, event: 'temperature', data: { sensor: 'roof', celsius: 21.5, extra: 'dropped' } }, json)
  t.equal(frame, 'id: 3\nevent: temperature\ndata: {"celsius":21.5,"sensor":"roof"}\n\n',
    'fields in schema order; a property the schema does not declare is not sent')
  t.strictSame(readAsSpec(bytesOf(frame)).events, [{ type: 'temperature', data: '{"celsius":21.5,"sensor":"roof"}', lastEventId: '3' }])
  t.equal(catalog.frame({ n: 1 }, json), 'data: {"n":1}\n\n', 'a value that is not a message is the unnamed event')
  t.equal(catalog.frame({ data: { n: 2 } }, json), 'data: {"n":2}\n\n')
  t.equal(catalog.frame({ event: 'message', data: { n: 3 } }, json), 'event: message\ndata: {"n":3}\n\n')
  t.equal(catalog.frame({ comment: 'keep-alive' }, json), ': keep-alive\n\n', 'a comment dispatches no event: nothing to check')
  t.equal(catalog.frame({ retry: 1000 }, json), 'retry: 1000\n\n')
  const published = prepare({ id: '9', event: 'anything', data: 'x' }, json)
  t.equal(catalog.frame(published, json), 'id: 9\nevent: anything\ndata: x\n\n', 'a channel event was framed (and checked) when published')
  t.throws(() => catalog.frame({ event: 'temperature', data: 'a string' }, json), { code: 'FST_SSE_SERIALIZE' },
    'a string where the schema wants an object is not sent as text: its schema writes it, or refuses it')
})

t.test('an undeclared event is an FST_SSE_UNDECLARED_EVENT naming it and what is declared', async t => {
  const catalog = catalogOf(sseEvents({ temperature: Reading, humidity: Type.Object({ percent: Type.Number() }) }))
  t.throws(() => catalog.frame({ event: 'pressure', data: {} }, json),
    { code: 'FST_SSE_UNDECLARED_EVENT', message: 'The event "pressure" is not declared for this stream or channel (declared: temperature, humidity); declare it in sseEvents()' })
  t.throws(() => catalog.frame({ celsius: 1 }, json), { code: 'FST_SSE_UNDECLARED_EVENT', message: /"message"/ }, 'no unnamed event declared')
  t.throws(() => catalog.frame('text', json), { code: 'FST_SSE_UNDECLARED_EVENT' })
  t.throws(() => catalog.serializerFor({ event: 'pressure', data: {} }), { code: 'FST_SSE_UNDECLARED_EVENT' }, 'on a channel too')
})

t.test('with validate: data that does not match its schema is an FST_SSE_INVALID_DATA saying where; without it, the serializer decides', async t => {
  const loose = catalogOf(sseEvents({ temperature: Reading }))
  const strict = catalogOf(sseEvents({ temperature: Reading }, { validate: true }))
  const wrong = { event: 'temperature', data: { celsius: 'hot', sensor: 'roof' } }
  t.throws(() => strict.frame(wrong, json),
    { code: 'FST_SSE_INVALID_DATA', message: 'The data of the event temperature does not match its declared schema: data/celsius must be number' })
  t.throws(() => strict.frame({ event: 'temperature', data: { celsius: 1 } }, json), { code: 'FST_SSE_INVALID_DATA', message: /data must have required property 'sensor'/ })
  t.throws(() => loose.frame(wrong, json), { code: 'FST_SSE_SERIALIZE' }, 'fast-json-stringify refuses what it cannot write as a number')
  t.equal(strict.frame({ event: 'temperature', data: { celsius: 2, sensor: 'a' } }, json), 'event: temperature\ndata: {"celsius":2,"sensor":"a"}\n\n')
  const formats = catalogOf(sseEvents({ signup: Type.Object({ email: Type.String({ format: 'email' }) }) }, { validate: true }))
  t.throws(() => formats.frame({ event: 'signup', data: { email: 'nope' } }, json), { code: 'FST_SSE_INVALID_DATA', message: /must match format "email"/ }, 'formats are known')
})
