import Fastify, { type FastifyRequest } from 'fastify'
import ssePlugin, { END_EVENT, type Channel, type ChannelMessage, type ResumableEnd, type SseContext } from '../../lib/index.js'

// A type test: never run, only compiled by `tsc --noEmit` in `npm test`. Every line below must
// compile, and every line after `@ts-expect-error` must not (or tsc reports the unused directive).

/** Compiles only if `value` is assignable to T. */
function expectType<T> (value: T): T { return value }
/** True only when A and B are the same type (so `any` or a wider type cannot slip through). */
type Equal<A, B> = (<X>() => X extends A ? 1 : 2) extends (<X>() => X extends B ? 1 : 2) ? true : false

export async function typeChecks (): Promise<void> {
  const app = Fastify()
  await app.register(ssePlugin, { heartbeat: false, retry: 0, serialize: value => String(value) })
  // @ts-expect-error heartbeat is a number of ms or false
  await app.register(ssePlugin, { heartbeat: true })
  // @ts-expect-error unknown register option
  await app.register(ssePlugin, { hearbeat: 1000 })

  app.get('/reply', async (request, reply) => {
    // reply.sse resolves to void, with any of the three kinds of source.
    const done = reply.sse((async function * () { yield { id: 1, data: { n: 1 } } })())
    expectType<Equal<typeof done, Promise<void>>>(true)
    expectType<Promise<void>>(reply.sse(['a', 'b']))
    expectType<Promise<void>>(reply.sse(new Set([1, 2])))
    expectType<Promise<void>>(reply.sse(ctx => {
      expectType<Equal<typeof ctx, SseContext>>(true)
      expectType<Equal<typeof ctx.signal, AbortSignal>>(true)
      expectType<Equal<typeof ctx.lastEventId, string | undefined>>(true)
      expectType<Equal<typeof ctx.request, FastifyRequest>>(true)
      return [ctx.lastEventId ?? 'first']
    }))
    expectType<Promise<void>>(reply.sse(async function * (ctx) {
      yield { data: ctx.request.url }
    }))
    expectType<Promise<void>>(reply.sse(async ctx => [ctx.signal.aborted]))
    expectType<Promise<void>>(reply.sse(['x'], { heartbeat: false, retry: 0, serialize: JSON.stringify }))
    expectType<Promise<void>>(reply.sse(['x'], { heartbeat: 5000 }))

    // @ts-expect-error a string is iterable, but never a source (it is refused at run time too)
    await reply.sse('text')
    // @ts-expect-error neither is a function returning a string
    await reply.sse(async () => 'text')
    // @ts-expect-error a number is not a source
    await reply.sse(42)
    // @ts-expect-error neither is a plain object
    await reply.sse({ data: 'x' })
    // @ts-expect-error a source function gets the stream context, not a string
    await reply.sse((ctx: string) => [ctx])
    // @ts-expect-error heartbeat is a number of ms or false
    await reply.sse(['x'], { heartbeat: true })
    // @ts-expect-error unknown stream option
    await reply.sse(['x'], { history: 5 })

    // request.lastEventId is the Last-Event-ID header, read-only.
    expectType<Equal<typeof request.lastEventId, string | undefined>>(true)
    // @ts-expect-error it cannot be assigned
    request.lastEventId = 'x'
    return done
  })

  // The route option, with an async generator handler.
  app.get('/route', { sse: true }, async function * (request) {
    expectType<Equal<typeof request.lastEventId, string | undefined>>(true)
    yield { id: 1, event: 'tick', data: { n: 1 } }
    yield 'plain'
  })
  app.get('/route-options', { sse: { heartbeat: false } }, async function * () { yield 1 })
  app.get('/route-off', { sse: false }, async () => 'not a stream')
  app.route({ method: 'GET', url: '/route-full', sse: { retry: 0 }, handler: async function * () { yield 1 } })
  // @ts-expect-error sse is true, false or stream options
  app.get('/bad', { sse: 'yes' }, async function * () { yield 1 })
  // @ts-expect-error heartbeat is a number of ms or false
  app.get('/bad-options', { sse: { heartbeat: 'often' } }, async function * () { yield 1 })

  // app.sse: open streams and channels.
  expectType<Equal<typeof app.sse.streams, number>>(true)
  const channel = app.sse.channel('x')
  expectType<Channel>(channel)
  expectType<Equal<typeof channel.size, number>>(true)
  expectType<Equal<typeof channel.name, string>>(true)
  expectType<Promise<string>>(channel.publish({ id: 'ignored', data: 1 }))
  expectType<Promise<string>>(channel.publish('any value'))
  expectType<AsyncIterable<ChannelMessage>>(channel.subscribe({ lastEventId: '1-0', signal: new AbortController().signal }))

  const typed = app.sse.channel<{ price: number }>('prices')
  expectType<Promise<string>>(typed.publish({ price: 1 }))
  expectType<Promise<string>>(typed.publish({ event: 'price', data: { price: 1 } }))
  // @ts-expect-error a typed channel takes its own data type
  await typed.publish({ price: 'one' })
  for await (const message of typed.subscribe()) {
    expectType<Equal<typeof message.id, string>>(true)
    expectType<{ price: number } | undefined>(message.data)
  }
  // @ts-expect-error streams is read-only
  app.sse.streams = 1

  // Many channels on one stream; resumable streams.
  app.get('/many', (_request, reply) => reply.sse(app.sse.multiplex(['news', 'sport'])))
  // @ts-expect-error multiplex takes channel names
  app.sse.multiplex('news')
  app.post('/chat', (_request, reply) => reply.sse(app.sse.resumable('g1', async function * ({ signal }) {
    expectType<Equal<typeof signal, AbortSignal>>(true)
    yield { event: 'token', data: 'hi' }
  }, { maxDuration: 60_000, ttl: 600_000 })))
  // @ts-expect-error ttl is a number of ms
  app.sse.resumable('g2', ['x'], { ttl: '10m' })
  app.get('/chat/:id', (_request, reply) => {
    const resumed = reply.sseResume('g1')
    expectType<Equal<typeof resumed, Promise<void>>>(true)
    return resumed
  })
  expectType<Equal<Awaited<ReturnType<typeof app.sse.cancel>>, boolean>>(true)
  expectType<Equal<ResumableEnd, 'done' | 'error' | 'cancelled' | 'timeout' | 'server-closing' | 'lost'>>(true)
  expectType<Equal<typeof END_EVENT, 'sse-end'>>(true)
}
