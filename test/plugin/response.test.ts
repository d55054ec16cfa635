import t from 'tap'
import cors from '@fastify/cors'
import { buildApp } from '../fixtures/app.js'
import { rawGet, urlOf } from '../fixtures/http.js'
import { logsOf } from '../fixtures/logs.js'
import { deferred } from '../fixtures/wait.js'

t.test('streams a finite source through inject with the SSE headers', async t => {
  const { app } = await buildApp(t)
  app.get('/events', (_request, reply) => reply.sse(['Event 0', { id: 1, event: 'update', data: { n: 1 } }]))
  const response = await app.inject('/events')
  t.equal(response.statusCode, 200)
  t.equal(response.headers['content-type'], 'text/event-stream; charset=utf-8')
  t.equal(response.headers['cache-control'], 'no-cache')
  t.equal(response.headers['x-accel-buffering'], 'no')
  t.equal(response.headers.connection, 'keep-alive')
  t.equal(response.headers['content-length'], undefined, 'a stream has no length')
  t.equal(response.payload, 'data: Event 0\n\nid: 1\nevent: update\ndata: {"n":1}\n\n')
})

t.test('keeps the status set with reply.code() and every header set on the reply', async t => {
  const { app } = await buildApp(t)
  app.get('/events', (_request, reply) => {
    reply.code(201).header('x-stream', 'yes').header('cache-control', 'no-store').header('content-type', 'text/plain')
    return reply.sse([1])
  })
  const response = await app.inject('/events')
  t.equal(response.statusCode, 201)
  t.equal(response.headers['x-stream'], 'yes')
  t.equal(response.headers['cache-control'], 'no-store', 'an explicit cache-control wins over the default')
  t.equal(response.headers['content-type'], 'text/event-stream; charset=utf-8', 'content-type is always the stream type')
})

t.test('headers set by hooks (@fastify/cors) reach the client', async t => {
  const { app } = await buildApp(t)
  await app.register(cors, { origin: 'https://dashboard.example' })
  app.addHook('onRequest', async (_request, reply) => { reply.header('x-hook', 'seen') })
  app.get('/events', (_request, reply) => reply.sse(['x']))
  const response = await app.inject({ url: '/events', headers: { origin: 'https://dashboard.example' } })
  t.equal(response.headers['access-control-allow-origin'], 'https://dashboard.example')
  t.equal(response.headers['x-hook'], 'seen')
})

t.test('a route marked { sse: true } streams what its async generator handler yields', async t => {
  const { app } = await buildApp(t)
  app.get('/events', { sse: true }, async function * (request) {
    yield { id: 'a', data: request.query }
    yield 'done'
  })
  const response = await app.inject('/events?x=1')
  t.equal(response.payload, 'id: a\ndata: {"x":"1"}\n\ndata: done\n\n')
})

t.test('a { sse: true } route handler that returns an async iterable from an async function is streamed', async t => {
  const { app } = await buildApp(t)
  app.get('/events', { sse: true }, async () => {
    async function * events () { yield 1; yield 2 }
    return events()
  })
  t.equal((await app.inject('/events')).payload, 'data: 1\n\ndata: 2\n\n')
})

t.test('a { sse: true } route can still answer with anything else', async t => {
  const { app } = await buildApp(t)
  app.get('/events', { sse: true }, async (_request, reply) => {
    reply.code(404)
    return { error: 'no such feed' }
  })
  app.get('/sync', { sse: true }, () => ({ plain: true }))
  const response = await app.inject('/events')
  t.equal(response.statusCode, 404)
  t.same(response.json(), { error: 'no such feed' })
  t.same((await app.inject('/sync')).json(), { plain: true })
})

t.test('route option { sse: { ... } } sets stream options for that route', async t => {
  const { app } = await buildApp(t)
  app.get('/events', { sse: { retry: 0 } }, async function * () { yield 'x' })
  app.get('/off', { sse: false }, async () => 'plain text')
  t.equal((await app.inject('/events')).payload, 'retry: 0\n\ndata: x\n\n')
  t.equal((await app.inject('/off')).payload, 'plain text')
})

t.test('the retry option opens every stream with a retry: line, and reply.sse options override it', async t => {
  const { app } = await buildApp(t, { retry: 10000 })
  app.get('/default', (_request, reply) => reply.sse(['x']))
  app.get('/override', (_request, reply) => reply.sse(['x'], { retry: 0, serialize: () => 'never used' }))
  t.equal((await app.inject('/default')).payload, 'retry: 10000\n\ndata: x\n\n')
  t.equal((await app.inject('/override')).payload, 'retry: 0\n\ndata: x\n\n')
})

t.test('serialize turns data that is not a string into text; strings go as they are', async t => {
  const { app } = await buildApp(t, { serialize: value => `<${JSON.stringify(value)}>` })
  app.get('/events', (_request, reply) => reply.sse([{ t: 1 }, 'plain', { data: [1, 2] }]))
  t.equal((await app.inject('/events')).payload, 'data: <{"t":1}>\n\ndata: plain\n\ndata: <[1,2]>\n\n')
})

t.test('a sync iterable and a function of the context are sources too', async t => {
  const { app } = await buildApp(t)
  app.get('/set', (_request, reply) => reply.sse(new Set(['a', 'b'])))
  app.get('/fn', (_request, reply) => reply.sse(async ({ lastEventId, request, signal }) => {
    return [{ id: lastEventId ?? 'none', data: `${request.url} ${signal.aborted}` }]
  }))
  t.equal((await app.inject('/set')).payload, 'data: a\n\ndata: b\n\n')
  const response = await app.inject({ url: '/fn', headers: { 'last-event-id': '41' } })
  t.equal(response.payload, 'id: 41\ndata: /fn false\n\n')
})

t.test('request.lastEventId is the Last-Event-ID header, or undefined', async t => {
  const { app } = await buildApp(t)
  app.get('/id', async request => ({ id: request.lastEventId ?? null }))
  t.same((await app.inject({ url: '/id', headers: { 'last-event-id': 'abc-7' } })).json(), { id: 'abc-7' })
  t.same((await app.inject('/id')).json(), { id: null })
})

t.test('Accept negotiation: 406 when the client refuses text/event-stream, and the source is never started', async t => {
  const { app } = await buildApp(t)
  let started = false
  app.get('/events', { sse: true }, async function * () { started = true; yield 'x' })
  const refused = await app.inject({ url: '/events', headers: { accept: 'application/json' } })
  t.equal(refused.statusCode, 406)
  t.equal(refused.json().code, 'FST_SSE_NOT_ACCEPTABLE')
  t.notOk(started, 'the generator body never ran')
  for (const accept of ['*/*', 'text/*', 'text/event-stream', 'application/json, text/event-stream;q=0.5']) {
    const ok = await app.inject({ url: '/events', headers: { accept } })
    t.equal(ok.statusCode, 200, `Accept: ${accept}`)
  }
  const none = await app.inject({ url: '/events', headers: { accept: '' } })
  t.equal(none.statusCode, 200, 'an empty Accept accepts anything')
})

t.test('a 406 finalizes a generator object that was already created', async t => {
  const { app } = await buildApp(t)
  let finalized = false
  app.get('/events', (_request, reply) => {
    const source = (function * () { try { yield 1 } finally { finalized = true } })()
    source.next()
    return reply.sse(source)
  })
  t.equal((await app.inject({ url: '/events', headers: { accept: 'text/html' } })).statusCode, 406)
  t.ok(finalized)
})

t.test('a value that is not a source is a 500 with FST_SSE_INVALID_SOURCE through the error handler', async t => {
  const { app, logs } = await buildApp(t)
  app.get('/string', (_request, reply) => reply.sse('hello' as never))
  app.get('/number', (_request, reply) => reply.sse(42 as never))
  app.get('/fn', (_request, reply) => reply.sse(() => ({ not: 'iterable' }) as never))
  for (const url of ['/string', '/number', '/fn']) {
    const response = await app.inject(url)
    t.equal(response.statusCode, 500, url)
    t.equal(response.json().code, 'FST_SSE_INVALID_SOURCE', url)
  }
  t.match((await app.inject('/string')).json().message, /string \(wrap it/)
  t.ok(logs.some(line => (line.err as { code?: string } | undefined)?.code === 'FST_SSE_INVALID_SOURCE'), 'logged')
})

t.test('a source function that throws before the stream starts is replied by Fastify (its status code kept)', async t => {
  const { app } = await buildApp(t)
  app.get('/missing', (_request, reply) => reply.sse(async () => {
    throw Object.assign(new Error('no such symbol'), { statusCode: 404 })
  }))
  const response = await app.inject('/missing')
  t.equal(response.statusCode, 404)
  t.equal(response.json().message, 'no such symbol')
})

t.test('invalid reply.sse options are a 500 with FST_SSE_INVALID_OPTION, and the source is dropped', async t => {
  const { app } = await buildApp(t)
  let finalized = false
  app.get('/events', (_request, reply) => {
    const source = (async function * () { try { yield 1 } finally { finalized = true } })()
    return reply.sse(source, { heartbeat: 0 })
  })
  const response = await app.inject('/events')
  t.equal(response.statusCode, 500)
  t.equal(response.json().code, 'FST_SSE_INVALID_OPTION')
  t.notOk(finalized, 'a generator that never started has nothing to finalize')
})

t.test('reply.sse() on a reply already sent logs FST_SSE_ALREADY_SENT and leaves the response alone', async t => {
  const { app, logs } = await buildApp(t)
  let finalized = false
  app.get('/twice', async (_request, reply) => {
    await reply.send('first')
    await reply.sse((async function * () { try { yield 1 } finally { finalized = true } })())
    return reply
  })
  const response = await app.inject('/twice')
  t.equal(response.payload, 'first')
  t.ok(logs.some(line => (line.err as { code?: string } | undefined)?.code === 'FST_SSE_ALREADY_SENT'))
  t.notOk(finalized, 'never started, so nothing ran')
})

t.test('a handler that replies while an async source function opens wins; the source is closed', async t => {
  const { app, logs } = await buildApp(t)
  let finalized = false
  app.get('/race', async (_request, reply) => {
    // Not awaited on purpose: the handler returns a value while the source function is still opening.
    reply.sse(async () => {
      await new Promise(resolve => setTimeout(resolve, 20))
      return (async function * () { try { yield 1 } finally { finalized = true } })()
    })
    return 'handler won'
  })
  const response = await app.inject('/race')
  t.equal(response.payload, 'handler won')
  await new Promise(resolve => setTimeout(resolve, 60))
  t.ok(logs.some(line => (line.err as { code?: string } | undefined)?.code === 'FST_SSE_ALREADY_SENT'))
  t.notOk(finalized, 'the generator never started')
})

t.test('onResponse hooks run when the server ends the stream', async t => {
  const { app } = await buildApp(t)
  const seen: number[] = []
  app.addHook('onResponse', async (_request, reply) => { seen.push(reply.statusCode) })
  app.get('/events', (_request, reply) => reply.sse([1, 2]))
  await app.inject('/events')
  t.same(seen, [200])
})

t.test('over real HTTP the headers arrive before the first event', async t => {
  const { app } = await buildApp(t)
  const gate = deferred()
  app.get('/events', { sse: true }, async function * () { await gate.promise; yield 'late' })
  const base = await urlOf(app)
  const { request, response } = await rawGet(base + '/events')
  t.equal(response.statusCode, 200, 'headers came while the source had yielded nothing')
  t.equal(response.headers['content-type'], 'text/event-stream; charset=utf-8')
  gate.resolve()
  const chunk = await new Promise<string>(resolve => response.once('data', data => resolve(String(data))))
  t.equal(chunk, 'data: late\n\n')
  request.destroy()
})

t.test('reply.sse() never rejects: a dropped generator whose finally throws is logged as a warning', async t => {
  const { app, logs } = await buildApp(t)
  let settled = 'pending'
  app.get('/events', (_request, reply) => {
    const source = (function * () {
      try { yield 1 } finally { throw new Error('cleanup failed') } // eslint-disable-line no-unsafe-finally
    })()
    source.next()
    const done = reply.sse(source)
    done.then(() => { settled = 'resolved' }, () => { settled = 'rejected' })
    return done
  })
  t.equal((await app.inject({ url: '/events', headers: { accept: 'application/json' } })).statusCode, 406)
  t.equal(settled, 'resolved')
  t.match(logsOf(logs, 'sse source threw while being closed'), [{ level: 40, err: { message: 'cleanup failed' } }])
})

t.test("Fastify's own register options (prefix, logLevel) are accepted alongside the plugin's", async t => {
  const { app } = await buildApp(t)
  await app.register(async child => {
    const { default: ssePlugin } = await import('../../lib/index.js')
    await child.register(ssePlugin, { logLevel: 'warn', prefix: '/ignored', heartbeat: false })
  })
  await app.ready()
  t.pass('registered')
})
