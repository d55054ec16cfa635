import Fastify from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import ssePlugin, { sseEvents as untypedEvents, type DeclaredChannel } from '../../lib/index.js'
import { sseEvents } from '../../lib/typebox.js'

// Type tests for declared events: compiled by `tsc --noEmit` in `npm test`, never run. Every line after
// `@ts-expect-error` must fail to compile (tsc reports a directive that is not needed).

function expectType<T> (value: T): T { return value }
type Equal<A, B> = (<X>() => X extends A ? 1 : 2) extends (<X>() => X extends B ? 1 : 2) ? true : false

const Reading = Type.Object({ celsius: Type.Number(), sensor: Type.String() })
const Weather = sseEvents({
  temperature: Reading,
  humidity: Type.Object({ percent: Type.Number() }),
  message: Type.String()
})

export async function declaredEventTypes (): Promise<void> {
  const app = Fastify().withTypeProvider<TypeBoxTypeProvider>()
  await app.register(ssePlugin)

  // A `{ sse: true }` generator handler: every yield is checked against the declaration.
  app.get('/weather', { sse: true, schema: { response: { 200: Weather } } }, async function * () {
    yield { event: 'temperature', data: { celsius: 21.5, sensor: 'roof' } } as const
    yield { event: 'humidity' as const, data: { percent: 40 }, id: 7 }
    yield 'plain text is the unnamed message event'
    yield { data: 'a message without a name' }
    yield { comment: 'keep-alive' }
  })
  // @ts-expect-error a wrong payload: celsius is a number
  app.get('/wrong-data', { sse: true, schema: { response: { 200: Weather } } }, async function * () {
    yield { event: 'temperature' as const, data: { celsius: 'hot', sensor: 'roof' } }
  })
  // @ts-expect-error an undeclared event name
  app.get('/undeclared', { sse: true, schema: { response: { 200: Weather } } }, async function * () {
    yield { event: 'pressure' as const, data: { hpa: 1013 } }
  })
  // @ts-expect-error the unnamed event's data is a string here
  app.get('/wrong-message', { sse: true, schema: { response: { 200: Weather } } }, async function * () {
    yield 42
  })

  // reply.sse() on a declared route takes only declared events.
  app.get('/reply', { schema: { response: { 200: Weather } } }, async (_request, reply) => {
    await reply.sse(async function * () {
      yield { event: 'humidity' as const, data: { percent: 50 } }
    })
    await reply.sse([{ event: 'temperature' as const, data: { celsius: 1, sensor: 'a' } }])
    // @ts-expect-error a payload of another event
    await reply.sse([{ event: 'temperature' as const, data: { percent: 50 } }])
    // @ts-expect-error an undeclared event name
    return reply.sse([{ event: 'wind' as const, data: { knots: 3 } }])
  })

  // Routes without a declaration keep taking anything.
  app.get('/free', async (_request, reply) => reply.sse([{ event: 'anything', data: { x: 1 } }, 42]))

  // A declared channel: publish and subscribe are typed.
  const weather = app.sse.channel('weather', { events: Weather })
  expectType<DeclaredChannel<{ temperature: { celsius: number, sensor: string }, humidity: { percent: number }, message: string }>>(weather)
  await weather.publish({ event: 'temperature', data: { celsius: 3, sensor: 'yard' } })
  await weather.publish('unnamed text')
  await weather.publishData('unnamed text')
  // @ts-expect-error a wrong payload
  await weather.publish({ event: 'humidity', data: { percent: '40%' } })
  // @ts-expect-error an undeclared event
  await weather.publish({ event: 'fog', data: {} })
  // @ts-expect-error publishData is the unnamed event: a string here
  await weather.publishData({ celsius: 1 })
  for await (const message of weather.subscribe()) {
    if (message.event === 'temperature') expectType<Equal<typeof message.data, { celsius: number, sensor: string }>>(true)
    if (message.event === 'humidity') expectType<Equal<typeof message.data, { percent: number }>>(true)
    if (message.event === 'sse-gap') expectType<Equal<typeof message.data, string>>(true)
    if (message.event === undefined) expectType<Equal<typeof message.data, string>>(true)
  }

  // A channel without a declaration is a plain Channel<T>.
  await app.sse.channel<number>('plain').publish(1)

  // The root export types names (data is unknown unless the schema carries its type, as Type.Unsafe does).
  const named = untypedEvents({ tick: { type: 'object' }, price: Type.Unsafe<number>({ type: 'number' }) })
  const ticks = app.sse.channel('ticks', { events: named })
  await ticks.publish({ event: 'tick', data: 'anything' })
  await ticks.publish({ event: 'price', data: 1 })
  // @ts-expect-error price is a number (Type.Unsafe carries it)
  await ticks.publish({ event: 'price', data: 'one' })
  // @ts-expect-error an undeclared name
  await ticks.publish({ event: 'tock', data: 1 })
}
