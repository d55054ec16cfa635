import t from 'tap'
import http from 'node:http'
import http2 from 'node:http2'
import { setTimeout as sleep } from 'node:timers/promises'
import { openStream } from '../../lib/testing.js'
import { buildApp } from '../fixtures/app.js'
import { bodyOf, urlOf } from '../fixtures/http.js'
import { logsOf } from '../fixtures/logs.js'
import { counted } from '../fixtures/sources.js'
import { until } from '../fixtures/wait.js'

// Issue 7, second round: what an adversarial review broke after the first fixes. Each case failed
// before its fix.

t.test('reply.sseContext.signal read after the client left (during an async preHandler) is already aborted', async t => {
  const { app } = await buildApp(t)
  let abortedAtRead: boolean | undefined
  app.get('/events', { sse: true, preHandler: async () => { await sleep(150) } }, async (_request, reply) => {
    abortedAtRead = reply.sseContext.signal.aborted
    return (async function * () { yield 'x' })()
  })
  const request = http.get(await urlOf(app) + '/events', { agent: false })
  request.on('error', () => {})
  await sleep(30)
  request.destroy()
  await until(() => abortedAtRead !== undefined, 2000, 'the handler to run')
  t.equal(abortedAtRead, true)
})

t.test('app.close() aborts reply.sseContext.signal of a handler still awaiting, and resolves without waiting for it', async t => {
  const { app } = await buildApp(t)
  let abortedAt = 0
  let entered = false
  app.get('/events', { sse: true }, async (_request, reply) => {
    entered = true
    const { signal } = reply.sseContext
    await sleep(4000, undefined, { signal }).catch(() => { abortedAt = performance.now() })
    return (async function * () { yield 'x' })()
  })
  const request = http.get(await urlOf(app) + '/events', { agent: false })
  request.on('error', () => {})
  await until(() => entered, 2000, 'the handler to start')
  const closeStarted = performance.now()
  await app.close()
  const closeMs = performance.now() - closeStarted
  t.ok(abortedAt > 0 && abortedAt - closeStarted < 100, `the signal aborted ${(abortedAt - closeStarted).toFixed(0)} ms into app.close()`)
  t.ok(closeMs < 1500, `app.close() took ${closeMs.toFixed(0)} ms`)
  request.destroy()
})

t.test('over HTTP/2, te and http2-settings are left out, and an array for a single-value header fails with FST_SSE_INVALID_HEADER', async t => {
  const { app } = await buildApp(t, {}, { http2: true } as never)
  const gen = counted()
  app.get('/te', (_request, reply) => { reply.header('te', 'gzip').header('http2-settings', 'AAA'); return reply.sse(['a']) })
  app.get('/age', (_request, reply) => { reply.header('age', ['1', '2']); return reply.sse(gen.source()) })
  const client = http2.connect(await urlOf(app))
  t.teardown(() => { client.close() })
  const get = async (path: string): Promise<{ status: unknown, headers: http2.IncomingHttpHeaders, body: string }> => {
    const stream = client.request({ ':path': path, accept: 'text/event-stream' })
    const headers = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
      stream.on('response', resolve)
      stream.on('error', reject)
    })
    return { status: headers[':status'], headers, body: await bodyOf(stream) }
  }
  const te = await get('/te')
  t.equal(te.status, 200)
  t.equal(te.headers.te, undefined)
  t.equal(te.body, 'data: a\n\n')
  const age = await get('/age')
  t.equal(age.status, 500)
  t.match(JSON.parse(age.body), { code: 'FST_SSE_INVALID_HEADER', message: /age/ })
  t.equal(gen.starts, 0)
})

t.test('a second reply.sse() while the first source still opens is refused (its promise is the first stream\'s), and leaves the first stream whole', async t => {
  const { app, logs } = await buildApp(t)
  let finalized = 0
  let second: Promise<void> | undefined
  app.get('/events', (_request, reply) => {
    const first = reply.sse(async ({ signal }) => {
      await sleep(50)
      return (async function * () {
        try {
          yield 'first'
          await sleep(60_000, undefined, { signal })
        } finally {
          finalized++
        }
      })()
    })
    second = reply.sse(['never'])
    return first
  })
  const stream = await openStream(app, '/events')
  t.same((await stream.take(1)).map(event => event.data), ['first'], 'the first stream runs')
  t.ok(logs.some(line => (line.err as { code?: string } | undefined)?.code === 'FST_SSE_ALREADY_SENT'), 'the second is refused, logged')
  await stream.close()
  await second
  t.equal(finalized, 1, 'the first source is finalized when its client leaves')
  t.equal(app.sse.streams, 0)
  t.match(logsOf(logs, 'sse stream ended'), [{ reason: 'client-gone' }])
})

t.test('a status that forbids a body (204, 304) answers the head and never opens the source', async t => {
  const { app } = await buildApp(t)
  let pulled = 0
  app.get('/events/:status', (request, reply) => {
    reply.code(Number((request.params as { status: string }).status))
    return reply.sse(function * () { for (;;) { pulled++; yield 'x' } })
  })
  for (const status of [204, 304]) {
    const response = await app.inject(`/events/${status}`)
    t.equal(response.statusCode, status)
    t.equal(response.payload, '')
  }
  t.equal(pulled, 0)
  t.equal(app.sse.streams, 0)
})

t.test('openStream().take() refuses a count that is not a non-negative integer', async t => {
  const { app } = await buildApp(t)
  app.get('/events', (_request, reply) => reply.sse(['a', 'b', 'c']))
  const stream = await openStream(app, '/events')
  t.same((await stream.take(2)).map(event => event.data), ['a', 'b'])
  for (const count of [-1, 1.5, Number.NaN]) await t.rejects(stream.take(count), TypeError, String(count))
  t.same((await stream.take(1)).map(event => event.data), ['c'], 'nothing was rewound')
  await stream.close()
})
