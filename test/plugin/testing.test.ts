import t from 'tap'
import Fastify from 'fastify'
import { setTimeout as sleep } from 'node:timers/promises'
import { openStream } from '../../lib/testing.js'
import { buildApp } from '../fixtures/app.js'

t.test('openStream collects N parsed events from an infinite stream; close() returns once the source is finalized', async t => {
  const { app } = await buildApp(t, { retry: 500 })
  let finalized = false
  app.get('/ticks', (_request, reply) => reply.sse(async function * ({ signal }) {
    try {
      for (let i = 0; ; i++) {
        yield { id: i, event: 'tick', data: { i } }
        if (i === 1) yield { comment: 'between' }
        await sleep(5, undefined, { signal })
      }
    } finally {
      finalized = true
    }
  }))
  const stream = await openStream(app, '/ticks')
  t.equal(stream.status, 200)
  t.equal(stream.headers.get('content-type'), 'text/event-stream; charset=utf-8')
  const first = await stream.take(3)
  t.same(first.map(event => [event.id, event.event, JSON.parse(event.data)]), [['0', 'tick', { i: 0 }], ['1', 'tick', { i: 1 }], ['2', 'tick', { i: 2 }]])
  const next = await stream.take(2)
  t.same(next.map(event => event.id), ['3', '4'], 'take() continues where the last one stopped')
  t.equal(stream.retry, 500)
  t.same(stream.comments, ['between'])
  t.ok(Number(stream.lastEventId) >= 4)
  t.notOk(finalized, 'still running while connected')
  await stream.close()
  t.ok(finalized, 'the generator finalized by the time close() resolved')
  t.equal(app.sse.streams, 0)
})

t.test('openStream sends Last-Event-ID and extra headers, and sees a finite stream end', async t => {
  const { app } = await buildApp(t)
  app.get('/from', { sse: true }, async function * (request) {
    yield { data: `${request.lastEventId} ${request.headers['x-user']}` }
  })
  const stream = await openStream(app, '/from', { lastEventId: '41', headers: { 'x-user': 'ada' } })
  const [event] = await stream.take(1)
  t.equal(event?.data, '41 ada')
  await stream.ended
  await t.rejects(stream.take(1), /ended after 0 of 1 events/)
  await stream.close()
})

t.test('openStream sends another method, with a JSON body', async t => {
  const { app } = await buildApp(t)
  app.post<{ Body: { prompt: string } }>('/chat', { sse: true }, async function * (request) {
    yield { event: request.method, data: `${request.headers['content-type']} ${request.body.prompt}` }
  })
  const stream = await openStream(app, '/chat', { method: 'POST', body: { prompt: 'hi' } })
  await stream.ended
  t.strictSame(stream.events.map(event => [event.event, event.data]), [['POST', 'application/json hi']])
})

t.test('take() rejects after its timeout with how many events came', async t => {
  const { app } = await buildApp(t)
  app.get('/slow', (_request, reply) => reply.sse(async function * ({ signal }) {
    yield 'one'
    await sleep(60_000, undefined, { signal })
  }))
  const stream = await openStream(app, '/slow')
  await t.rejects(stream.take(2, 100), /timed out after 100 ms with 1 of 2 events/)
  await stream.close()
})

t.test('openStream refuses an app without the plugin', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await t.rejects(openStream(app, '/'), /fastify-sse-stream is not registered/)
})

t.test('openStream reaches an app listening on IPv6 loopback and keeps repeated response headers', async t => {
  const { app } = await buildApp(t)
  app.get('/v6', (_request, reply) => {
    reply.header('set-cookie', ['a=1', 'b=2'])
    return reply.sse(['over IPv6'])
  })
  await app.listen({ port: 0, host: '::1' })
  const stream = await openStream(app, '/v6')
  t.same(stream.headers.getSetCookie(), ['a=1', 'b=2'])
  t.equal((await stream.take(1))[0]?.data, 'over IPv6')
  await stream.close()
})

t.test('many openStream calls at once on an app not yet listening make it listen once', async t => {
  const { app } = await buildApp(t)
  app.get('/many', (_request, reply) => reply.sse(['hello']))
  const warnings: Error[] = []
  const onWarning = (warning: Error): void => { warnings.push(warning) }
  process.on('warning', onWarning)
  t.teardown(() => { process.removeListener('warning', onWarning) })
  const streams = await Promise.all(Array.from({ length: 20 }, () => openStream(app, '/many')))
  t.ok(streams.every(stream => stream.status === 200))
  await new Promise(resolve => setImmediate(resolve))
  t.same(warnings.map(warning => warning.name), [], 'no MaxListenersExceededWarning')
  await Promise.all(streams.map(stream => stream.close()))
})
