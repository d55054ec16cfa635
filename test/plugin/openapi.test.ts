import t from 'tap'
import swagger from '@fastify/swagger'
import AjvModule from 'ajv'
import Fastify from 'fastify'
import { Type } from 'typebox'
import ssePlugin from '../../lib/index.js'
import { sseEvents } from '../../lib/typebox.js'
import { openStream } from '../../lib/testing.js'

// The API document @fastify/swagger generates for a route with declared events is OpenAPI 3.2: its
// `text/event-stream` response carries an `itemSchema`, and every event the route sends matches it.

const Reading = Type.Object({ celsius: Type.Number(), sensor: Type.String() })
const Weather = sseEvents({
  temperature: Reading,
  humidity: Type.Object({ percent: Type.Number({ minimum: 0, maximum: 100 }) }),
  message: Type.String()
}, { description: 'Weather readings as they are taken' })

// Ajv is CommonJS: its class is the default export's default.
const Ajv = AjvModule.default

/** With `convertConstToEnum: false`, as a 3.1+ document may (swagger's default writes `enum: [name]`). */
async function documentedApp (t: { teardown (fn: () => unknown): void }, convertConstToEnum = false): Promise<import('fastify').FastifyInstance> {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(swagger, { openapi: { openapi: '3.2.0', info: { title: 'weather', version: '1.0.0' } }, convertConstToEnum })
  await app.register(ssePlugin, { heartbeat: false })
  app.get('/weather', { sse: true, schema: { summary: 'Live weather', response: { 200: Weather } } }, async function * () {
    yield { id: 'r1', event: 'temperature', data: { celsius: 21.5, sensor: 'roof' } } as const
    yield { id: 'r2', event: 'humidity', data: { percent: 40 } } as const
    yield 'clear skies'
  })
  await app.ready()
  return app
}

t.test('@fastify/swagger writes an OpenAPI 3.2 document whose stream response has the declared events as its itemSchema', async t => {
  const app = await documentedApp(t)
  const document = app.swagger() as { openapi: string, paths: Record<string, any> }
  t.equal(document.openapi, '3.2.0')
  const response = document.paths['/weather'].get.responses['200']
  t.equal(response.description, 'Weather readings as they are taken')
  const media = response.content['text/event-stream']
  t.strictSame(media.schema, { type: 'array', items: media.itemSchema }, 'the whole stream is an array of its items')
  const { itemSchema } = media
  t.same(itemSchema.properties, { event: { type: 'string' }, data: { type: 'string' }, id: { type: 'string' }, retry: { type: 'integer', minimum: 0 } })
  t.strictSame(itemSchema.required, ['data'])
  t.strictSame(itemSchema.oneOf.map((branch: any) => branch.properties.event.const), ['temperature', 'humidity', 'message'],
    'a union discriminated by the event name')
  t.strictSame(itemSchema.oneOf[0].required, ['event'], 'a named event must carry its name')
  t.notOk(itemSchema.oneOf[2].required, 'the unnamed event may come without one')
  t.same(itemSchema.oneOf[0].properties.data, { contentMediaType: 'application/json', contentSchema: JSON.parse(JSON.stringify(Reading)) })
  t.same(itemSchema.oneOf[2].properties.data, { type: 'string' }, 'text data is documented as text')
})

t.test('every event the route sends is an item of the document\'s itemSchema, its JSON data valid by its contentSchema', async t => {
  const app = await documentedApp(t)
  const { itemSchema } = (app.swagger() as { paths: Record<string, any> }).paths['/weather'].get.responses['200'].content['text/event-stream']
  const ajv = new Ajv({ strict: false })
  const isItem = ajv.compile(itemSchema)
  const stream = await openStream(app, '/weather')
  await stream.ended
  t.equal(stream.events.length, 3)
  for (const event of stream.events) {
    // An event as OpenAPI models it: its fields as strings, without those that are absent.
    const item = Object.fromEntries(Object.entries({ event: event.event, data: event.data, id: event.id }).filter(([, v]) => v !== undefined))
    t.ok(isItem(item), `${JSON.stringify(item)} is an item: ${ajv.errorsText(isItem.errors)}`)
    const branch = itemSchema.oneOf.find((b: any) => b.properties.event.const === (event.event ?? 'message'))
    const { contentSchema } = branch.properties.data
    if (contentSchema !== undefined) t.ok(ajv.validate(contentSchema, JSON.parse(event.data)), `${event.data} matches its contentSchema`)
  }
  t.notOk(isItem({ event: 'pressure', data: '{}' }), 'an undeclared event is not an item')
  t.notOk(isItem({ event: 'temperature' }), 'an event without data is not an item')
})

t.test('with swagger\'s default (const written as a one-value enum) the items discriminate the same way', async t => {
  const app = await documentedApp(t, true)
  const { itemSchema } = (app.swagger() as { paths: Record<string, any> }).paths['/weather'].get.responses['200'].content['text/event-stream']
  t.strictSame(itemSchema.oneOf.map((branch: any) => branch.properties.event.enum), [['temperature'], ['humidity'], ['message']])
  const isItem = new Ajv({ strict: false }).compile(itemSchema)
  t.ok(isItem({ event: 'humidity', data: '{"percent":1}' }))
  t.ok(isItem({ data: 'text' }), 'the unnamed event')
  t.notOk(isItem({ event: 'pressure', data: '{}' }))
})
