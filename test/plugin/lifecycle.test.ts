import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { buildApp } from '../fixtures/app.js'
import { bodyOf, rawGet, urlOf } from '../fixtures/http.js'
import { logsOf } from '../fixtures/logs.js'
import { deferred, until } from '../fixtures/wait.js'

// "The moment the client leaves": every way a generator can be waiting when that happens.
const FINALIZE_WITHIN_MS = 100

t.test('client leaves while the generator awaits a long timer with the signal: finally runs at once', async t => {
  const { app } = await buildApp(t)
  const firstSent = deferred()
  const finalized = deferred<number>()
  let aborted = false
  app.get('/events', (_request, reply) => reply.sse(async function * ({ signal }) {
    signal.addEventListener('abort', () => { aborted = true })
    try {
      yield 'first'
      firstSent.resolve()
      await sleep(60_000, undefined, { signal })
      yield 'never'
    } finally {
      finalized.resolve(performance.now())
    }
  }))
  const base = await urlOf(app)
  const { request, response } = await rawGet(base + '/events')
  await new Promise(resolve => response.once('data', resolve))
  await firstSent.promise
  const leftAt = performance.now()
  request.destroy()
  const finalizedAt = await finalized.promise
  t.ok(aborted, 'ctx.signal aborted')
  t.ok(finalizedAt - leftAt < FINALIZE_WITHIN_MS, `finally ran ${(finalizedAt - leftAt).toFixed(1)} ms after the client left`)
})

t.test('client leaves while the plugin waits for drain on a full socket: the wait ends and finally runs', async t => {
  const { app } = await buildApp(t)
  const finalized = deferred<number>()
  let pulled = 0
  const big = 'x'.repeat(64 * 1024)
  app.get('/events', (_request, reply) => reply.sse(async function * () {
    try {
      for (;;) { pulled++; yield big }
    } finally {
      finalized.resolve(performance.now())
    }
  }))
  const base = await urlOf(app)
  const { request, response } = await rawGet(base + '/events')
  response.pause() // a client that stops reading
  await until(() => pulled > 0)
  let last = -1
  // Held still: the count stops moving once the socket buffers are full.
  await until(() => { const still = pulled === last; last = pulled; return still }, 5000, 'the generator to be held still')
  await sleep(100)
  t.equal(pulled, last, `no value pulled while the socket is full (${pulled} frames of 64 KiB pulled)`)
  const leftAt = performance.now()
  request.destroy()
  const finalizedAt = await finalized.promise
  t.ok(finalizedAt - leftAt < FINALIZE_WITHIN_MS, `finally ran ${(finalizedAt - leftAt).toFixed(1)} ms after the client left`)
})

t.test('client leaves while the generator is parked at a yield between events: finally runs at once', async t => {
  const { app } = await buildApp(t)
  const finalized = deferred<number>()
  const tick = deferred()
  app.get('/events', (_request, reply) => reply.sse(async function * ({ signal }) {
    try {
      for (let i = 0; ; i++) {
        yield i
        tick.resolve()
        await sleep(10, undefined, { signal })
      }
    } finally {
      finalized.resolve(performance.now())
    }
  }))
  const base = await urlOf(app)
  const { request, response } = await rawGet(base + '/events')
  await new Promise(resolve => response.once('data', resolve))
  await tick.promise
  const leftAt = performance.now()
  request.destroy()
  const finalizedAt = await finalized.promise
  t.ok(finalizedAt - leftAt < FINALIZE_WITHIN_MS, `finally ran ${(finalizedAt - leftAt).toFixed(1)} ms after the client left`)
})

t.test('client leaves: Fastify runs onRequestAbort hooks, and the end is logged as client-gone', async t => {
  const { app, logs } = await buildApp(t)
  const aborted = deferred()
  app.addHook('onRequestAbort', async function (_request) { aborted.resolve() })
  app.get('/events', (_request, reply) => reply.sse(async function * ({ signal }) {
    yield 'x'
    await sleep(60_000, undefined, { signal })
  }))
  const base = await urlOf(app)
  const { request, response } = await rawGet(base + '/events')
  await new Promise(resolve => response.once('data', resolve))
  request.destroy()
  await aborted.promise
  await until(() => logsOf(logs, 'sse stream ended').length === 1)
  const [ended] = logsOf(logs, 'sse stream ended')
  t.match(ended, { level: 30, reason: 'client-gone', events: 1, bytes: 9 })
  t.equal(ended?.err, undefined, 'leaving is not an error')
})

t.test('a source that throws: logged with the error, response ended, the server keeps serving, nothing unhandled', async t => {
  const { app, logs } = await buildApp(t)
  const unhandled: unknown[] = []
  const onUnhandled = (reason: unknown): void => { unhandled.push(reason) }
  process.on('unhandledRejection', onUnhandled)
  t.teardown(() => { process.removeListener('unhandledRejection', onUnhandled) })
  app.get('/broken', (_request, reply) => { reply.sse(async function * () { yield 'ok'; throw new Error('sensor offline') }) })
  app.get('/health', async () => 'fine')
  const broken = await app.inject('/broken')
  t.equal(broken.statusCode, 200)
  t.equal(broken.payload, 'data: ok\n\n', 'what was sent stays sent; the response ends')
  t.equal((await app.inject('/health')).payload, 'fine')
  await sleep(20)
  t.same(unhandled, [])
  const [ended] = logsOf(logs, 'sse stream ended')
  t.match(ended, { level: 50, reason: 'error', events: 1, err: { message: 'sensor offline' } })
})

t.test('an invalid field ends the stream with its FST_SSE_ code: no injected line reaches the wire', async t => {
  const { app, logs } = await buildApp(t)
  app.get('/inject', (_request, reply) => reply.sse([
    { id: 1, data: 'fine' },
    { id: '2\nevent: admin', data: 'evil' },
    { id: 3, data: 'never sent' }
  ]))
  app.get('/event', (_request, reply) => reply.sse([{ event: 'a\rb', data: 'x' }]))
  const response = await app.inject('/inject')
  t.equal(response.payload, 'id: 1\ndata: fine\n\n')
  t.equal((await app.inject('/event')).payload, '')
  const ended = logsOf(logs, 'sse stream ended')
  t.match(ended[0], { level: 50, reason: 'error', err: { code: 'FST_SSE_INVALID_ID' } })
  t.match(ended[1], { level: 50, reason: 'error', err: { code: 'FST_SSE_INVALID_EVENT' } })
})

t.test('a generator whose finally throws while being closed is logged as a warning, not rethrown', async t => {
  const { app, logs } = await buildApp(t)
  app.get('/events', (_request, reply) => reply.sse(async function * () {
    try {
      yield 'x'
      await sleep(50) // ignores the signal, so the plugin closes it with return() at the next yield
      yield 'y'
    } finally {
      // eslint-disable-next-line no-unsafe-finally
      throw new Error('cleanup failed')
    }
  }))
  const base = await urlOf(app)
  const { request, response } = await rawGet(base + '/events')
  await new Promise(resolve => response.once('data', resolve))
  request.destroy()
  await until(() => logsOf(logs, 'sse stream ended').length === 1)
  t.match(logsOf(logs, 'sse source threw while being closed'), [{ level: 40, err: { message: 'cleanup failed' } }])
  t.match(logsOf(logs, 'sse stream ended')[0], { reason: 'client-gone' })
})

t.test('a source ignoring its signal is closed with return() once it yields again', async t => {
  const { app, logs } = await buildApp(t)
  const finalized = deferred()
  let yieldedAfterLeaving = false
  app.get('/events', (_request, reply) => reply.sse(async function * () {
    try {
      yield 'x'
      await sleep(150) // no signal: cannot be interrupted, so the plugin must wait for the next yield
      yieldedAfterLeaving = true
      yield 'y'
      yield 'z'
    } finally {
      finalized.resolve()
    }
  }))
  const base = await urlOf(app)
  const { request, response } = await rawGet(base + '/events')
  await new Promise(resolve => response.once('data', resolve))
  request.destroy()
  await finalized.promise
  t.ok(yieldedAfterLeaving)
  await until(() => logsOf(logs, 'sse stream ended').length === 1)
  t.match(logsOf(logs, 'sse stream ended')[0], { reason: 'client-gone', events: 1 })
})

t.test('app.close() ends every open stream, finalizes its generator, spreads retries, and resolves in under 1 s', async t => {
  const { app, logs } = await buildApp(t, { retry: 2000 })
  let finalized = 0
  app.get('/events', (_request, reply) => reply.sse(async function * ({ signal }) {
    try {
      for (;;) { yield 'tick'; await sleep(60_000, undefined, { signal }) }
    } finally {
      finalized++
    }
  }))
  const base = await urlOf(app)
  const clients = await Promise.all(Array.from({ length: 5 }, () => rawGet(base + '/events')))
  const bodies = clients.map(({ response }) => bodyOf(response))
  await until(() => app.sse.streams === 5)
  const start = performance.now()
  await app.close()
  const took = performance.now() - start
  t.ok(took < 1000, `app.close() took ${took.toFixed(0)} ms`)
  t.equal(finalized, 5, 'every generator finalized')
  const retries = (await Promise.all(bodies)).map(body => {
    t.match(body, /^retry: 2000\n\ndata: tick\n\nretry: \d+\n\n$/, 'the stream ended with a retry: line')
    return Number(/retry: (\d+)\n\n$/.exec(body)?.[1])
  })
  for (const retry of retries) t.ok(retry >= 2000 && retry < 4000, `retry ${retry} within [2000, 4000)`)
  t.ok(new Set(retries).size > 1, `clients reconnect at different times (${retries.join(', ')})`)
  t.equal(logsOf(logs, 'sse stream ended').filter(line => line.reason === 'server-closing').length, 5)
})

t.test('app.close() does not wait for a generator that ignores its signal longer than its grace period', async t => {
  const { app } = await buildApp(t)
  app.get('/stuck', (_request, reply) => reply.sse(async function * () {
    yield 'x'
    await sleep(5000, undefined, { ref: false }) // ignores the signal (and does not hold the test process open)
  }))
  const base = await urlOf(app)
  const { response } = await rawGet(base + '/stuck')
  await new Promise(resolve => response.once('data', resolve))
  const start = performance.now()
  await app.close()
  const took = performance.now() - start
  t.ok(took < 1000, `app.close() took ${took.toFixed(0)} ms`)
})

t.test('heartbeats: a comment line after each idle interval, none while events flow, none after the end', async t => {
  // No count of beats over a fixed time: on a loaded machine a timer fires late, never early. The
  // silence lasts until the client saw two beats, and no more beats came than the silence had intervals.
  const INTERVAL = 100
  const { app } = await buildApp(t, { heartbeat: INTERVAL })
  const twoBeats = deferred<void>()
  app.get('/idle', (_request, reply) => reply.sse(async function * () {
    yield 'start'
    await twoBeats.promise
    yield 'end'
  }))
  app.get('/busy', (_request, reply) => reply.sse(async function * ({ signal }) {
    // An event every 2 ms for more than three intervals.
    for (let i = 0; i < 200; i++) { yield i; await sleep(2, undefined, { signal }) }
  }))
  const base = await urlOf(app)
  const timers = (): number => process.getActiveResourcesInfo().filter(resource => resource === 'Timeout').length
  const before = timers()
  const read = async (path: string, onData = (_body: string): void => {}): Promise<string> => {
    // Connection: close, so no keep-alive socket (and its timer) outlives the response.
    const { response } = await rawGet(base + path, { connection: 'close' })
    let body = ''
    response.on('data', chunk => { body += chunk; onData(body) })
    await new Promise(resolve => response.on('close', resolve))
    return body
  }
  let silentFrom = 0
  let silentUntil = 0
  const idle = await read('/idle', body => {
    if (silentFrom === 0 && body.startsWith('data: start\n\n')) silentFrom = performance.now()
    if (body.split(':\n\n').length - 1 === 2) twoBeats.resolve()
    if (silentUntil === 0 && body.endsWith('data: end\n\n')) silentUntil = performance.now()
  })
  t.match(idle, /^data: start\n\n(:\n\n)+data: end\n\n$/, 'beats in the silence, between the events')
  const beats = idle.split(':\n\n').length - 1
  // The silence as the client saw it starts a little late: one interval of slack.
  const intervals = Math.floor((silentUntil - silentFrom) / INTERVAL) + 1
  t.ok(beats >= 2 && beats <= intervals, `${beats} beats in ${(silentUntil - silentFrom).toFixed(0)} ms of silence: none before its interval`)
  t.notMatch(await read('/busy'), /:\n\n/, 'no heartbeat while events are written more often')
  await until(() => timers() === before, 1000, 'the timers to go')
  t.equal(timers(), before, 'no timer left behind once the streams ended')
})

t.test('heartbeat: false sends none', async t => {
  const { app } = await buildApp(t, { heartbeat: false })
  app.get('/idle', (_request, reply) => reply.sse(async function * () {
    yield 'a'
    await sleep(50)
    yield 'b'
  }))
  const base = await urlOf(app)
  const { response } = await rawGet(base + '/idle')
  t.equal(await bodyOf(response), 'data: a\n\ndata: b\n\n')
})

t.test('one log line per stream end, with duration, events, bytes and reason; nothing per event', async t => {
  const { app, logs } = await buildApp(t)
  app.get('/events', (_request, reply) => reply.sse(Array.from({ length: 100 }, (_, i) => ({ id: i, data: 'é' }))))
  await app.inject('/events')
  const ended = logsOf(logs, 'sse stream ended')
  t.equal(ended.length, 1)
  const bytes = Array.from({ length: 100 }, (_, i) => Buffer.byteLength(`id: ${i}\ndata: é\n\n`)).reduce((a, b) => a + b)
  t.match(ended[0], { level: 30, reason: 'source-done', events: 100, bytes, durationMs: Number })
  const messages = logs.filter(line => line.reqId === ended[0]?.reqId).map(line => line.msg)
  t.same(messages.sort(), ['incoming request', 'request completed', 'sse stream ended'])
})
