import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { EventSource } from 'eventsource'
import type { FastifyInstance } from 'fastify'
import { END_EVENT, type ResumableOptions, type SsePluginOptions } from '../../lib/index.js'
import { openStream, type TestEvent } from '../../lib/testing.js'
import { buildApp } from '../fixtures/app.js'
import { closeApp, urlOf } from '../fixtures/http.js'
import { logsOf } from '../fixtures/logs.js'
import { REDIS_URL, redisAvailable, uniquePrefix } from '../fixtures/redis.js'
import { until } from '../fixtures/wait.js'

// Resumable streams: a generation that outlives the connection that started it, read from the start
// or from a Last-Event-ID by any client on any instance, cancellable, ended by a recognisable event.

interface Generation { yielded: number, finalized: number, aborted: string | undefined }

/** Tokens 0..count-1, `pace` ms apart, counting what it did. */
function generation (state: Generation, count: number, pace = 10) {
  return async function * ({ signal }: { signal: AbortSignal }): AsyncGenerator<{ event: string, data: number }> {
    signal.addEventListener('abort', () => { state.aborted = String(signal.reason) })
    try {
      for (let i = 0; i < count; i++) {
        await sleep(pace, undefined, { signal })
        state.yielded++
        yield { event: 'token', data: i }
      }
    } finally {
      state.finalized++
    }
  }
}

/** POST /chat/:id starts a generation; GET /chat/:id resumes it; DELETE /chat/:id cancels it. */
async function chatApp (t: Parameters<typeof buildApp>[0], state: Generation, count: number, options: ResumableOptions = {},
  plugin: SsePluginOptions = {}, pace = 10): Promise<{ app: FastifyInstance, logs: ReturnType<typeof Array<any>> }> {
  const { app, logs } = await buildApp(t, { heartbeat: false, ...plugin })
  app.post<{ Params: { id: string } }>('/chat/:id', (request, reply) =>
    reply.sse(app.sse.resumable(request.params.id, generation(state, count, pace), options)))
  app.get<{ Params: { id: string } }>('/chat/:id', (request, reply) => reply.sseResume(request.params.id))
  app.delete<{ Params: { id: string } }>('/chat/:id', async request => {
    await app.sse.cancel(request.params.id)
    return { cancelled: request.params.id }
  })
  return { app, logs }
}

const fresh = (): Generation => ({ yielded: 0, finalized: 0, aborted: undefined })
const tokens = (events: TestEvent[]) => events.filter(event => event.event === 'token').map(event => Number(event.data))
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i)

t.test('the client leaves mid-generation; the generation goes on; coming back with its last id it gets exactly the rest, then the end', async t => {
  const state = fresh()
  const { app } = await chatApp(t, state, 30)
  const first = await openStream(app, '/chat/g1', { method: 'POST' })
  t.strictSame(tokens(await first.take(5)), range(0, 5))
  await first.close()
  const leftAt = state.yielded
  await until(() => state.finalized === 1, 5000, 'the generation to finish without a reader')
  t.ok(state.yielded === 30 && leftAt < 30, `it went on after the client left (at ${leftAt}) to the end`)
  const again = await openStream(app, '/chat/g1', { lastEventId: first.lastEventId })
  await again.ended
  t.strictSame(tokens(again.events), range(5, 30), 'exactly what it missed, each once')
  const end = again.events.at(-1)!
  t.equal(end.event, END_EVENT)
  t.strictSame(JSON.parse(end.data), { reason: 'done' })
  const stop = await app.inject({ url: '/chat/g1', headers: { accept: 'text/event-stream', 'last-event-id': end.id! } })
  t.equal(stop.statusCode, 204, 'once it has the end, a client is told to stop')
  t.equal(state.finalized, 1, 'and it never started again')
})

t.test('a second client (another tab) attaches to the running generation and gets it all from the start', async t => {
  const state = fresh()
  const { app } = await chatApp(t, state, 20)
  const first = await openStream(app, '/chat/g2', { method: 'POST' })
  await first.take(8)
  const second = await openStream(app, '/chat/g2')
  await Promise.all([first.ended, second.ended])
  t.strictSame(tokens(second.events), range(0, 20))
  t.strictSame(tokens(first.events), range(0, 20))
  t.equal(second.events.at(-1)?.event, END_EVENT)
})

t.test('cancel stops the generation: its signal aborts (an upstream fetch ends), its finally runs, readers get the end', async t => {
  const state = fresh()
  const { app } = await chatApp(t, state, 1000)
  const reader = await openStream(app, '/chat/g3', { method: 'POST' })
  await reader.take(3)
  const cancelled = await app.inject({ method: 'DELETE', url: '/chat/g3' })
  t.strictSame(cancelled.json(), { cancelled: 'g3' })
  await reader.ended
  t.equal(state.aborted, 'cancelled')
  t.equal(state.finalized, 1)
  t.strictSame(JSON.parse(reader.events.at(-1)!.data), { reason: 'cancelled' })
  t.ok(state.yielded < 1000)
})

t.test('a generation past maxDuration ends with reason timeout; one that throws ends with reason error, logged', async t => {
  const state = fresh()
  const { app, logs } = await chatApp(t, state, 1000, { maxDuration: 150 })
  app.post('/broken', (_request, reply) => reply.sse(app.sse.resumable('g5', async function * () {
    yield 'one'
    throw new Error('upstream 500')
  })))
  const slow = await openStream(app, '/chat/g4', { method: 'POST' })
  await slow.ended
  t.strictSame(JSON.parse(slow.events.at(-1)!.data), { reason: 'timeout' })
  t.equal(state.aborted, 'timeout')
  const broken = await openStream(app, '/broken', { method: 'POST' })
  await broken.ended
  t.strictSame(broken.events.map(event => [event.event, event.data]), [[undefined, 'one'], [END_EVENT, '{"reason":"error"}']])
  t.match(logsOf(logs, 'sse resumable stream failed')[0], { stream: 'g5', err: { message: 'upstream 500' } })
})

t.test('an unknown stream is 404, a bad key is refused, a key running already is 409; the record expires after its ttl', async t => {
  const state = fresh()
  const { app } = await chatApp(t, state, 3, { ttl: 200 })
  app.get<{ Querystring: { key: string } }>('/by-query', (request, reply) => reply.sseResume(request.query.key))
  const headers = { accept: 'text/event-stream' }
  const unknown = await app.inject({ url: '/chat/nope', headers })
  t.equal(unknown.statusCode, 404)
  t.equal(unknown.json().code, 'FST_SSE_UNKNOWN_STREAM')
  const tooLong = await app.inject({ url: '/by-query?key=' + 'k'.repeat(151), headers })
  t.equal(tooLong.statusCode, 404, 'a key from a URL that cannot be a stream\'s is no stream')
  t.equal(tooLong.json().code, 'FST_SSE_UNKNOWN_STREAM')
  t.throws(() => app.sse.resumable('', []), { code: 'FST_SSE_INVALID_STREAM_KEY' })
  t.throws(() => app.sse.resumable('x', [], { maxDuration: 0 }), { code: 'FST_SSE_INVALID_OPTION' })
  t.throws(() => app.sse.resumable('x', [], { ttl: 2 ** 31 }), { code: 'FST_SSE_INVALID_OPTION' })
  await t.rejects(app.sse.cancel(42 as never), { code: 'FST_SSE_INVALID_STREAM_KEY' })
  const running = await openStream(app, '/chat/g6', { method: 'POST' })
  const twice = await app.inject({ method: 'POST', url: '/chat/g6', headers })
  t.equal(twice.statusCode, 409)
  await running.ended
  t.equal((await app.inject({ url: '/chat/g6', headers })).statusCode, 200, 'finished, still kept: readable again')
  await sleep(300)
  t.equal((await app.inject({ url: '/chat/g6', headers })).statusCode, 404, 'past its ttl: gone')
})

t.test('app.close() ends the readers (they come back, elsewhere), then every generation (reason server-closing), its end published', async t => {
  const state = fresh()
  const { app, logs } = await chatApp(t, state, 10_000)
  const reader = await openStream(app, '/chat/g7', { method: 'POST' })
  await reader.take(2)
  await app.close()
  await reader.ended
  t.ok(reader.retry !== undefined, 'the reader was told when to come back')
  t.equal(state.finalized, 1)
  t.equal(state.aborted, 'server-closing')
  t.strictSame(logsOf(logs, 'sse resumable stream end not published'), [], 'its end went into the history, before the channels closed')
})

t.test('an EventSource reads the stream to its end, comes back with the end\'s id, and is told to stop', async t => {
  const state = fresh()
  const { app } = await chatApp(t, state, 5, {}, { retry: 50 })
  let resumes = 0
  app.addHook('onRequest', async request => { if (request.method === 'GET') resumes++ })
  // The generation starts by itself (a POST from a fetch client); the browser-style client attaches.
  const started = await openStream(app, '/chat/g8', { method: 'POST' })
  await started.ended
  const source = new EventSource(await urlOf(app) + '/chat/g8')
  t.teardown(() => { source.close() })
  const seen: string[] = []
  source.addEventListener('token', event => { seen.push(event.data) })
  source.addEventListener(END_EVENT, () => { seen.push('end') })
  await until(() => source.readyState === EventSource.CLOSED, 5000, 'the EventSource to stop for good')
  t.strictSame(seen, ['0', '1', '2', '3', '4', 'end'])
  t.equal(resumes, 2, 'it came back once, with the end\'s id, and got 204')
  source.close()
  await closeApp(app)
})

t.test('through Redis: a generation started on one instance is resumed on another, and cancelled from it', async t => {
  if (!(await redisAvailable(t))) return
  const redisPrefix = uniquePrefix(t)
  const state = fresh()
  const one = (await chatApp(t, state, 10_000, {}, { redis: REDIS_URL, redisPrefix }, 5)).app
  const two = (await chatApp(t, fresh(), 0, {}, { redis: REDIS_URL, redisPrefix })).app
  const unknown = await two.inject({ url: '/chat/never-started', headers: { accept: 'text/event-stream' } })
  t.equal(unknown.statusCode, 404, 'a key with no record in Redis is no stream')
  const first = await openStream(one, '/chat/g9', { method: 'POST' })
  await first.take(3)
  await first.close()
  await sleep(50)
  const again = await openStream(two, '/chat/g9', { lastEventId: first.lastEventId })
  const next = await again.take(5)
  t.strictSame(tokens(next), range(3, 8), 'the other instance goes on from where the client was')
  const cancelled = await two.inject({ method: 'DELETE', url: '/chat/g9' })
  t.equal(cancelled.statusCode, 200)
  await until(() => state.finalized === 1, 5000, 'the generation on the first instance to stop')
  t.equal(state.aborted, 'cancelled')
  await again.ended
  t.strictSame(JSON.parse(again.events.at(-1)!.data), { reason: 'cancelled' })
  const seen = tokens(again.events)
  t.strictSame(seen, range(3, 3 + seen.length), 'in order, none twice, none missed')
})

t.test('a generation that cannot start (its channel refuses the publish) fails its stream and leaves nothing running', async t => {
  const { app } = await buildApp(t)
  const source = app.sse.resumable('late', ['x']) as (ctx: unknown) => Promise<unknown>
  await app.close()
  await t.rejects(source({ signal: new AbortController().signal, request: undefined }), { code: 'FST_SSE_CHANNELS_CLOSED' })
})

t.test('a generation that ignores its signal is not waited for: its end goes out at once, it is finalized when it gives control back', async t => {
  const { app, logs } = await buildApp(t, { heartbeat: false })
  let finalized = 0
  app.post('/stubborn', (_request, reply) => reply.sse(app.sse.resumable('stubborn', async function * () {
    try {
      yield 'one'
      await sleep(900) // ignores its signal
      yield 'late' // not taken: the generation was stopped
    } finally {
      finalized++
    }
  })))
  const reader = await openStream(app, '/stubborn', { method: 'POST' })
  await reader.take(1)
  const cancelling = performance.now()
  t.equal(await app.sse.cancel('stubborn'), true)
  await reader.ended
  t.ok(performance.now() - cancelling < 600, 'the end did not wait for the source')
  t.strictSame(reader.events.map(event => [event.event, event.data]), [[undefined, 'one'], [END_EVENT, '{"reason":"cancelled"}']])
  t.equal(finalized, 0, 'still inside its sleep')
  await until(() => finalized === 1, 3000, 'the source to be finalized once it yields')
  t.equal(await app.sse.cancel('stubborn'), false, 'over: nothing to cancel')
  t.strictSame(logsOf(logs, 'sse resumable stream end not published'), [])
})

t.test('cancelled while its source function is still opening, the source is finalized once it opens; the end does not wait', async t => {
  const { app } = await buildApp(t, { heartbeat: false })
  const state = fresh()
  let opened = false
  app.post('/slow-open', (_request, reply) => reply.sse(app.sse.resumable('slow-open', async ctx => {
    await sleep(300) // an upstream that takes its time to answer, ignoring the signal
    opened = true
    return generation(state, 10)(ctx)
  })))
  const reader = await openStream(app, '/slow-open', { method: 'POST' })
  await sleep(20)
  t.equal(await app.sse.cancel('slow-open'), true)
  await reader.ended
  t.strictSame(reader.events.map(event => [event.event, event.data]), [[END_EVENT, '{"reason":"cancelled"}']])
  t.equal(opened, false, 'the end went out before the source opened')
  await until(() => opened, 3000, 'the source to open')
  t.equal(state.yielded, 0, 'nothing pulled from it')
})
