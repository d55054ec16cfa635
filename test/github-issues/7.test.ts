import t from 'tap'
import http from 'node:http'
import http2 from 'node:http2'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { openStream } from '../../lib/testing.js'
import { buildApp } from '../fixtures/app.js'
import { rawGet, urlOf } from '../fixtures/http.js'
import { logsOf } from '../fixtures/logs.js'
import { until } from '../fixtures/wait.js'
import { forceGc } from '../fixtures/gc.js'
import { counted } from '../fixtures/sources.js'

// Issue 7: every started source is finalized, on every path. One case per hole the review found;
// each failed on the main it was filed against.

const BIG = 'x'.repeat(128 * 1024)

/** Open `count` requests and drop each after `leaveAfterMs`, before any response arrives. */
async function leaveEarly (url: string, count: number, leaveAfterMs: number): Promise<void> {
  await Promise.all(Array.from({ length: count }, async () => {
    const request = http.get(url, { headers: { accept: 'text/event-stream' }, agent: false })
    request.on('error', () => {})
    await sleep(leaveAfterMs)
    request.destroy()
  }))
}

t.test('1. clients that leave during an async preHandler leave no stream and no unfinalized generator', async t => {
  const { app } = await buildApp(t)
  const gen = counted()
  let handled = 0
  app.get('/events', {
    preHandler: async () => { await sleep(200) }
  }, (_request, reply) => { handled++; return reply.sse(gen.source()) })
  const base = await urlOf(app)
  await leaveEarly(base + '/events', 5, 50)
  await until(() => handled === 5, 5000, 'the five handlers to run')
  await until(() => app.sse.streams === 0 && gen.finalized === gen.starts, 2000, 'every stream to end')
  t.equal(app.sse.streams, 0)
  t.equal(gen.finalized, gen.starts, `${gen.starts} started, ${gen.finalized} finalized`)
})

t.test('1. a client that leaves while an async handler awaits before reply.sse() or before returning a generator leaks nothing', async t => {
  const { app } = await buildApp(t)
  const gen = counted()
  let handled = 0
  app.get('/reply', async (_request, reply) => {
    await sleep(150)
    handled++
    return reply.sse(gen.source())
  })
  app.get('/marked', { sse: true }, async () => {
    await sleep(150)
    handled++
    return gen.source()
  })
  const base = await urlOf(app)
  await Promise.all([leaveEarly(base + '/reply', 3, 30), leaveEarly(base + '/marked', 3, 30)])
  await until(() => handled === 6, 5000, 'the six handlers to run')
  await until(() => app.sse.streams === 0 && gen.finalized === gen.starts, 2000, 'every stream to end')
  t.equal(app.sse.streams, 0)
  t.equal(gen.finalized, gen.starts)
})

for (const protocol of ['HTTP/1.1', 'HTTP/2'] as const) {
  t.test(`1. over ${protocol}, a client that leaves while an async source function opens aborts its signal at once`, async t => {
    const { app } = await buildApp(t, {}, protocol === 'HTTP/2' ? { http2: true } as never : {})
    let abortedAt = 0
    let opened = 0
    const gen = counted()
    app.get('/events', (_request, reply) => reply.sse(async ({ signal }) => {
      signal.addEventListener('abort', () => { abortedAt = performance.now() })
      await sleep(300, undefined, { signal }).catch(() => {})
      opened++
      return gen.source()
    }))
    await app.listen({ port: 0, host: '127.0.0.1' })
    const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
    let leftAt = 0
    if (protocol === 'HTTP/2') {
      const client = http2.connect(url)
      t.teardown(() => { client.close() })
      const stream = client.request({ ':path': '/events', accept: 'text/event-stream' })
      stream.on('error', () => {})
      await sleep(50)
      leftAt = performance.now()
      stream.close(http2.constants.NGHTTP2_CANCEL)
    } else {
      const request = http.get(url + '/events', { agent: false })
      request.on('error', () => {})
      await sleep(50)
      leftAt = performance.now()
      request.destroy()
    }
    await until(() => opened === 1, 2000, 'the source function to return')
    await until(() => app.sse.streams === 0 && gen.finalized === gen.starts, 2000, 'the stream to end')
    t.ok(abortedAt > 0 && abortedAt - leftAt < 100, `the signal aborted ${(abortedAt - leftAt).toFixed(1)} ms after the client left`)
    t.equal(gen.starts, 0, 'the generator it returned was never started')
  })
}

t.test('2. a signal observed only through an abort listener or AbortSignal.any still aborts after a garbage collection', async t => {
  const { app } = await buildApp(t, { heartbeat: false })
  let finalized = 0
  // The generator keeps only the promise: nothing but the stream may hold the signal itself.
  async function * untilAborted (aborted: Promise<unknown>): AsyncGenerator<string> {
    try {
      yield 'first'
      await aborted
    } finally {
      finalized++
    }
  }
  const onAbort = (signal: AbortSignal): Promise<unknown> =>
    new Promise(resolve => signal.addEventListener('abort', resolve, { once: true }))
  app.get('/listener', (_request, reply) => reply.sse(ctx => untilAborted(onAbort(ctx.signal))))
  app.get('/any', (_request, reply) => reply.sse(ctx =>
    untilAborted(onAbort(AbortSignal.any([ctx.signal, AbortSignal.timeout(600_000)])))))
  const streams = await Promise.all(['/listener', '/any', '/listener', '/any'].map(path => openStream(app, path)))
  await Promise.all(streams.map(stream => stream.take(1)))
  forceGc()
  await sleep(10)
  forceGc()
  for (const stream of streams) stream.close().catch(() => {})
  await until(() => finalized === 4, 2000, 'every generator to be finalized')
  t.equal(finalized, 4)
  t.equal(app.sse.streams, 0)
})

t.test('3. a stream that starts after app.close() began is ended at once, with a retry hint', async t => {
  const { app } = await buildApp(t)
  const gen = counted()
  app.get('/events', async (_request, reply) => {
    await sleep(200)
    return reply.sse(gen.source())
  })
  const base = await urlOf(app)
  let closing: Promise<void> | undefined
  const client = await new Promise<{ body: Promise<string>, status: number }>((resolve, reject) => {
    http.get(base + '/events', { agent: false }, response => {
      let body = ''
      response.setEncoding('utf8')
      response.on('data', chunk => { body += chunk })
      resolve({ status: response.statusCode!, body: new Promise(resolve => response.on('end', () => resolve(body))) })
    }).on('error', reject)
    setTimeout(() => { closing = app.close() }, 50)
  })
  const startedAt = performance.now()
  t.equal(client.status, 200)
  t.match(await client.body, /retry: \d+\n\n$/, 'told when to come back')
  await closing
  t.ok(performance.now() - startedAt < 1000, 'app.close() did not wait for the client')
  t.equal(gen.finalized, gen.starts, 'its generator finalized')
})

t.test('4. HEAD on a stream route answers the stream headers and never opens the source', async t => {
  const { app } = await buildApp(t)
  let called = 0
  let pulled = 0
  app.get('/function', (_request, reply) => reply.sse(() => { called++; return ['a'] }))
  app.get('/generator', { sse: true }, async function * () { pulled++; yield 'a' })
  for (const path of ['/function', '/generator']) {
    const response = await app.inject({ method: 'HEAD', url: path })
    t.equal(response.statusCode, 200, path)
    t.equal(response.headers['content-type'], 'text/event-stream; charset=utf-8', path)
    t.equal(response.payload, '')
  }
  t.equal(called, 0, 'the source function was never called')
  t.equal(pulled, 0, 'the generator never ran')
  t.equal(app.sse.streams, 0)
})

t.test('5. a header Node refuses fails the request with a clear error instead of hanging the client', async t => {
  const { app, logs } = await buildApp(t)
  const gen = counted()
  let settled = false
  app.get('/events', (_request, reply) => {
    reply.header('x-city', 'Zürich €')
    const done = reply.sse(gen.source())
    done.then(() => { settled = true }, () => { settled = true })
    return done
  })
  const base = await urlOf(app)
  const { response } = await rawGet(base + '/events')
  let body = ''
  response.setEncoding('utf8')
  response.on('data', chunk => { body += chunk })
  await new Promise(resolve => response.on('end', resolve))
  t.equal(response.statusCode, 500)
  t.match(JSON.parse(body), { code: 'FST_SSE_INVALID_HEADER', message: /x-city/ })
  await until(() => settled, 1000, 'reply.sse() to settle')
  t.equal(gen.starts, 0)
  t.ok(logs.some(line => (line.err as { code?: string } | undefined)?.code === 'FST_SSE_INVALID_HEADER'), 'logged')
})

t.test('6. return() is not called on an iterator whose next() threw', async t => {
  const { app } = await buildApp(t)
  let returns = 0
  app.get('/events', (_request, reply) => reply.sse({
    [Symbol.asyncIterator] () {
      return {
        next: async () => { throw new Error('cursor broke') },
        return: async () => { returns++; return { value: undefined, done: true as const } }
      }
    }
  }))
  await app.inject('/events')
  await sleep(20)
  t.equal(returns, 0)
})

t.test('7. a channel subscriber ended as too slow is logged with its own reason', async t => {
  const { app, logs } = await buildApp(t, { maxSubscriberQueue: 5, heartbeat: false })
  const channel = app.sse.channel('feed')
  app.get('/feed', (_request, reply) => reply.sse(channel.subscribe()))
  const base = await urlOf(app)
  const slow = await rawGet(base + '/feed')
  slow.response.pause()
  await until(() => channel.size === 1)
  for (let n = 0; n < 400 && channel.size === 1; n++) {
    await channel.publish({ n, big: BIG })
    await new Promise(resolve => setImmediate(resolve))
  }
  await until(() => logsOf(logs, 'sse stream ended').length === 1, 2000, 'the stream to end')
  t.match(logsOf(logs, 'sse stream ended'), [{ reason: 'too-slow' }])
  slow.request.destroy()
})

t.test('8. a Last-Event-ID over the cap is treated as absent, logged once, never echoed', async t => {
  const { app, logs } = await buildApp(t)
  const channel = app.sse.channel('feed')
  await channel.publish('kept')
  const seen: Array<string | undefined> = []
  app.get('/feed', (request, reply) => {
    seen.push(request.lastEventId, request.lastEventId)
    return reply.sse(channel.subscribe({ lastEventId: request.lastEventId }))
  })
  const stream = await openStream(app, '/feed', { lastEventId: '9'.repeat(15_000) })
  await sleep(50)
  t.same(seen, [undefined, undefined])
  t.equal(stream.events.length, 0, 'no replay, no gap notice')
  await stream.close()
  const warnings = logs.filter(line => line.level === 40 && /Last-Event-ID/.test(line.msg))
  t.equal(warnings.length, 1, 'logged once')
  t.notOk(JSON.stringify(logs).includes('9'.repeat(600)), 'the id is not in the logs')
})

t.test('8. a Last-Event-ID sent as UTF-8 bytes is read as UTF-8', async t => {
  const { app } = await buildApp(t)
  const seen: Array<string | undefined> = []
  app.get('/events', (request, reply) => { seen.push(request.lastEventId); return reply.sse(['x']) })
  const base = await urlOf(app)
  for (const id of ['Zürich-7', '東京-8', 'plain-9']) {
    const { response } = await rawGet(base + '/events', { 'last-event-id': Buffer.from(id, 'utf8').toString('latin1') })
    response.resume()
    await new Promise(resolve => response.on('end', resolve))
  }
  t.same(seen, ['Zürich-7', '東京-8', 'plain-9'])
})

t.test('8. the 406 answer does not echo a long Accept header', async t => {
  const { app } = await buildApp(t)
  app.get('/events', (_request, reply) => reply.sse(['x']))
  const accept = 'text/html, ' + 'application/x-very-long;q=1, '.repeat(500) + 'text/plain'
  const response = await app.inject({ url: '/events', headers: { accept } })
  t.equal(response.statusCode, 406)
  t.ok(response.payload.length < 500, `the body is ${response.payload.length} bytes`)
  t.match(response.json(), { code: 'FST_SSE_NOT_ACCEPTABLE' })
})

t.test('9. openStream().take() moves its cursor only when it succeeds, and concurrent takes queue', async t => {
  const { app } = await buildApp(t, { heartbeat: false })
  const channel = app.sse.channel('feed')
  app.get('/feed', (_request, reply) => reply.sse(channel.subscribe()))
  const stream = await openStream(app, '/feed')
  await until(() => channel.size === 1)
  await t.rejects(stream.take(2, 50), /timed out/)
  await channel.publish('a')
  await channel.publish('b')
  t.same((await stream.take(2)).map(event => event.data), ['a', 'b'], 'the timed-out take skipped nothing')
  const first = stream.take(1)
  const second = stream.take(1)
  await channel.publish('c')
  await channel.publish('d')
  t.same((await first).map(event => event.data), ['c'])
  t.same((await second).map(event => event.data), ['d'], 'the two takes did not lose one another')
  await stream.close()
})

t.test('a { sse: true } handler reads the stream context from reply.sseContext: the same one the stream uses, aborted when the client leaves while it awaits', async t => {
  const { app } = await buildApp(t)
  let abortedAt = 0
  let sameContext = false
  let lastEventId: string | undefined
  const gen = counted()
  app.get('/events', { sse: true }, async (_request, reply) => {
    const { signal } = reply.sseContext
    lastEventId = reply.sseContext.lastEventId
    signal.addEventListener('abort', () => { abortedAt = performance.now() })
    await sleep(300, undefined, { signal }).catch(() => {})
    sameContext = reply.sseContext.signal === signal
    return gen.source()
  })
  const base = await urlOf(app)
  const request = http.get(base + '/events', { agent: false, headers: { 'last-event-id': '41' } })
  request.on('error', () => {})
  await sleep(50)
  const leftAt = performance.now()
  request.destroy()
  await until(() => sameContext, 2000, 'the handler to return')
  t.ok(abortedAt > 0 && abortedAt - leftAt < 100, `aborted ${(abortedAt - leftAt).toFixed(1)} ms after the client left`)
  t.equal(lastEventId, '41')
  await until(() => app.sse.streams === 0, 1000, 'no stream left')
  t.equal(gen.starts, 0)
})

t.test('a response Node refuses to start anyway is cut, not left hanging, and the stream ends as an error', async t => {
  const { app, logs } = await buildApp(t)
  const gen = counted()
  app.get('/events', (_request, reply) => {
    reply.raw.writeHead = () => { throw new Error('refused by Node') }
    return reply.sse(gen.source())
  })
  const base = await urlOf(app)
  const outcome = await new Promise<string>(resolve => {
    http.get(base + '/events', { agent: false }, () => resolve('a response')).on('error', err => resolve(err.message))
  })
  t.match(outcome, /socket hang up|ECONNRESET/, 'the connection was cut')
  await until(() => logsOf(logs, 'sse stream ended').length === 1)
  t.match(logsOf(logs, 'sse stream ended'), [{ reason: 'error', err: { message: 'refused by Node' } }])
  t.equal(app.sse.streams, 0)
})

t.test('app.close() cuts a response whose client stopped reading instead of waiting for it', async t => {
  const { app } = await buildApp(t, { heartbeat: false })
  app.get('/events', (_request, reply) => reply.sse(async function * () { for (;;) yield BIG }))
  const base = await urlOf(app)
  const { response } = await rawGet(base + '/events')
  response.pause()
  await sleep(100)
  const started = performance.now()
  await app.close()
  t.ok(performance.now() - started < 2000, `app.close() took ${(performance.now() - started).toFixed(0)} ms`)
  t.equal(app.sse.streams, 0)
})

t.test('app.close() waits (within its grace) for a source the client already left that is still finalizing', async t => {
  const { app } = await buildApp(t, { heartbeat: false })
  let finalized = false
  app.get('/events', (_request, reply) => reply.sse(async function * () {
    try {
      yield 'first'
      await sleep(200) // ignores the signal
    } finally {
      finalized = true
    }
  }))
  const stream = await openStream(app, '/events')
  await stream.take(1)
  const closed = stream.close()
  await sleep(20)
  t.equal(app.sse.streams, 1, 'ended for the client, still finalizing')
  await app.close()
  t.ok(finalized, 'closed only after the source was finalized')
  await closed
})
