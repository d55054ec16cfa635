import t from 'tap'
import diagnostics from 'node:diagnostics_channel'
import type { StreamTraceContext } from '../../lib/index.js'
import { buildApp } from '../fixtures/app.js'
import { bodyOf, rawGet, urlOf } from '../fixtures/http.js'
import { until } from '../fixtures/wait.js'

// The facts of app.sse.stats(), as they happen, on node:diagnostics_channel: for APMs and metrics.

const ES = { accept: 'text/event-stream' }
interface Teardown { teardown (fn: () => unknown): void }

const trace = diagnostics.tracingChannel<unknown, StreamTraceContext>('fastify-sse-stream.stream')

/** Subscribe `handlers` to the stream trace until the test ends. */
function traced (t: Teardown, handlers: Parameters<typeof trace.subscribe>[0]): void {
  trace.subscribe(handlers)
  t.teardown(() => { trace.unsubscribe(handlers) })
}

/** Messages published on a plain channel until the test ends. */
function collect (t: Teardown, name: string): unknown[] {
  const messages: unknown[] = []
  const onMessage = (message: unknown): void => { messages.push(message) }
  diagnostics.subscribe(name, onMessage)
  t.teardown(() => { diagnostics.unsubscribe(name, onMessage) })
  return messages
}

const noop = (): void => {}

t.test('a stream is traced: start with its request and route pattern, asyncEnd with how it ended', async t => {
  const { app } = await buildApp(t)
  const starts: StreamTraceContext[] = []
  const ends: StreamTraceContext[] = []
  traced(t, { start: ctx => { starts.push({ ...ctx }) }, end: noop, asyncStart: noop, asyncEnd: ctx => { ends.push(ctx) }, error: noop })
  app.get('/items/:id', (_request, reply) => reply.sse(['a', 'b']))
  t.equal(await bodyOf((await rawGet((await urlOf(app)) + '/items/7?token=secret', ES)).response), 'data: a\n\ndata: b\n\n')
  await until(() => ends.length === 1)
  t.equal(starts.length, 1)
  t.match(starts[0], { route: 'GET /items/:id', startedAt: Number })
  t.equal(starts[0]!.request.url, '/items/7?token=secret', 'the request itself, for who wants it')
  t.equal(starts[0]!.reason, undefined, 'nothing about its end at its start')
  t.match(ends[0], { route: 'GET /items/:id', reason: 'source-done', events: 2, bytes: 18, durationMs: Number })
})

t.test('a stream whose source fails to open ends its trace without a reason: it never was', async t => {
  const { app } = await buildApp(t)
  const ends: StreamTraceContext[] = []
  traced(t, { start: noop, end: noop, asyncStart: noop, asyncEnd: ctx => { ends.push(ctx) }, error: noop })
  app.get('/broken', (_request, reply) => reply.sse(async () => { throw new Error('no upstream') }))
  const response = await app.inject({ url: '/broken', headers: ES })
  t.equal(response.statusCode, 500)
  await until(() => ends.length === 1)
  t.equal(ends[0]!.reason, undefined)
  t.equal(ends[0]!.route, 'GET /broken')
})

t.test('nothing is traced for a stream that started while nobody listened (hasSubscribers is asked first)', async t => {
  const { app } = await buildApp(t)
  let release = (): void => {}
  const released = new Promise<void>(resolve => { release = resolve })
  app.get('/events', (_request, reply) => reply.sse(async function * () { yield 'a'; await released }))
  const before = await rawGet((await urlOf(app)) + '/events', ES)
  await until(() => app.sse.stats().events === 1)
  const ends: StreamTraceContext[] = []
  traced(t, { start: noop, end: noop, asyncStart: noop, asyncEnd: ctx => { ends.push(ctx) }, error: noop })
  release()
  await bodyOf(before.response)
  await until(() => app.sse.stats().ends['source-done'] === 1)
  t.same(ends, [], 'the untraced stream publishes no end')
})

t.test('refusals, replays and gap notices are published on their channels', async t => {
  const refusals = collect(t, 'fastify-sse-stream.refusal')
  const replays = collect(t, 'fastify-sse-stream.replay')
  const gaps = collect(t, 'fastify-sse-stream.gap')
  const { app } = await buildApp(t, { history: 1, maxChannelSubscribers: 1 })
  const channel = app.sse.channel('feed')
  app.get('/feed', (request, reply) => reply.sse(channel.subscribe({ lastEventId: request.lastEventId })))
  const first = await channel.publish(1)
  await channel.publish(2)
  const base = await urlOf(app)
  const resumed = await rawGet(base + '/feed', { ...ES, 'last-event-id': first })
  t.teardown(() => { resumed.request.destroy() })
  await until(() => gaps.length === 0 && replays.length === 1, 2000, 'the replay')
  t.same(replays, [{ channel: 'feed', lastEventId: first }])
  const old = await rawGet(base + '/feed', { ...ES, 'last-event-id': '1-0' })
  await bodyOf(old.response)
  t.match(refusals, [{ route: 'GET /feed', reason: 'channel-subscribers' }])
  t.equal((refusals[0] as { request: { url: string } }).request.url, '/feed')
  resumed.request.destroy()
  await until(() => channel.size === 0)
  const gapped = await rawGet(base + '/feed', { ...ES, 'last-event-id': '1-0' })
  t.teardown(() => { gapped.request.destroy() })
  await until(() => gaps.length === 1, 2000, 'the gap notice')
  t.same(gaps, [{ channel: 'feed' }])
})
