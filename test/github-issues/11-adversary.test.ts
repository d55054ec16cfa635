import t, { type Test } from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import { END_EVENT, GAP_EVENT, type ResumableOptions, type SsePluginOptions } from '../../lib/index.js'
import { openStream, type TestEvent } from '../../lib/testing.js'
import { buildApp } from '../fixtures/app.js'
import { logsOf } from '../fixtures/logs.js'
import { REDIS_URL, redisAvailable, uniquePrefix } from '../fixtures/redis.js'
import { until } from '../fixtures/wait.js'

// Issue 11, what an adversarial review of resumable streams found: each case failed before its fix.
// Redis failing is played by a command connection of the test's own whose scripts fail on demand.

interface Counts { opened: number, finalized: number }

/** Tokens 0..count-1, `pace` ms apart, honouring its signal. */
function tokens (counts: Counts, count: number, pace = 5) {
  return async function * ({ signal }: { signal: AbortSignal }): AsyncGenerator<{ event: string, data: number }> {
    counts.opened++
    try {
      for (let i = 0; i < count; i++) {
        await sleep(pace, undefined, { signal })
        yield { event: 'token', data: i }
      }
    } finally {
      counts.finalized++
    }
  }
}

async function chatApp (t: Test, counts: Counts, count: number, plugin: SsePluginOptions = {}, options: ResumableOptions = {}) {
  const built = await buildApp(t, { heartbeat: false, ...plugin })
  const { app } = built
  app.post<{ Params: { id: string } }>('/chat/:id', (request, reply) =>
    reply.sse(app.sse.resumable(request.params.id, tokens(counts, count), options)))
  app.get<{ Params: { id: string } }>('/chat/:id', (request, reply) => reply.sseResume(request.params.id))
  return built
}

const fresh = (): Counts => ({ opened: 0, finalized: 0 })
const numbers = (events: TestEvent[]) => events.filter(event => event.event === 'token').map(event => Number(event.data))
const reasonOf = (event: TestEvent | undefined) => event?.event === END_EVENT ? JSON.parse(event.data).reason : undefined
const sse = { accept: 'text/event-stream' }

/** The scripts of a command connection of the test's own, each failing while `failing(name)` says so. */
function failingRedis (t: Test, failing: (script: string) => boolean): Redis {
  const client = new Redis(REDIS_URL)
  t.teardown(() => client.disconnect())
  return new Proxy(client, {
    get (target, property, receiver) {
      const value = Reflect.get(target, property, receiver)
      if (typeof property !== 'string' || !property.startsWith('sse') || typeof value !== 'function') return value
      return (...args: unknown[]) => failing(property)
        ? Promise.reject(new Error(`injected: ${property} failed`))
        : value.apply(target, args)
    }
  })
}

if (await redisAvailable(t)) {
  t.test('A1. Redis fails mid-generation and never takes its end: readers end (reason lost) at maxDuration plus the grace, and a comeback is told to stop', async t => {
    let broken = false
    const redis = failingRedis(t, script => broken && script !== 'sseReadRecord')
    const counts = fresh()
    const { app, logs } = await chatApp(t, counts, 1000, { redis, redisPrefix: uniquePrefix(t) }, { maxDuration: 500 })
    const reader = await openStream(app, '/chat/a1', { method: 'POST' })
    await reader.take(3)
    broken = true
    const startedAt = performance.now()
    await until(() => reader.events.some(event => event.event === END_EVENT), 8000, 'the reader to be given an end')
    t.equal(reasonOf(reader.events.at(-1)), 'lost')
    t.ok(performance.now() - startedAt < 6000, 'within maxDuration plus the 2.5 s grace (and margin)')
    t.equal(reader.events.at(-1)?.id, undefined, 'the end it was given has no id: the client keeps the last it had')
    await reader.ended
    await until(() => counts.finalized === 1, 3000, 'the generation to be finalized')
    t.ok(logsOf(logs, 'sse resumable stream failed').length === 1, 'the failing publish is logged')
    t.ok(logsOf(logs, 'sse resumable stream end not published').length === 1, 'and so is the end it could not publish')
    const comeback = await app.inject({ url: '/chat/a1', headers: { ...sse, 'last-event-id': reader.lastEventId! } })
    t.equal(comeback.statusCode, 204, 'past waiting for an end: the client stops')
  })

  t.test('A3. the end is published but its record fails once: it is saved again, and a client holding the end is told to stop', async t => {
    let endSaves = 0
    const redis = failingRedis(t, script => script === 'sseSaveRecord' && endSaves++ === 0)
    const counts = fresh()
    const { app } = await chatApp(t, counts, 3, { redis, redisPrefix: uniquePrefix(t) })
    const reader = await openStream(app, '/chat/a3', { method: 'POST' })
    await reader.ended
    t.equal(reasonOf(reader.events.at(-1)), 'done')
    await until(() => endSaves >= 2, 3000, 'the end\'s record to be saved again')
    await sleep(50)
    const comeback = await app.inject({ url: '/chat/a3', headers: { ...sse, 'last-event-id': reader.lastEventId! } })
    t.equal(comeback.statusCode, 204)
  })

  t.test('A5. one key started on two instances at once: one runs it, the other answers 409; both readers see the one generation', async t => {
    const redisPrefix = uniquePrefix(t)
    const counts = fresh()
    const one = (await chatApp(t, counts, 20, { redis: REDIS_URL, redisPrefix })).app
    const two = (await chatApp(t, counts, 20, { redis: REDIS_URL, redisPrefix })).app
    const answers = await Promise.all([one, two].map(app => app.inject({ method: 'POST', url: '/chat/a5', headers: sse })))
    t.strictSame(answers.map(answer => answer.statusCode).sort(), [200, 409])
    t.equal(answers.find(answer => answer.statusCode === 409)!.json().code, 'FST_SSE_STREAM_EXISTS')
    t.equal(counts.opened, 1, 'one generation ran')
    const streamed = answers.find(answer => answer.statusCode === 200)!
    const values = streamed.body.split('\n').filter(line => line.startsWith('data: ') && !line.includes('reason'))
    t.equal(values.length, 20, 'its stream holds each token once')
  })
}

t.test('A2. a source that never gives control back does not hold its key: the end goes out on cancel, and the key stays taken until its record expires', async t => {
  const { app } = await buildApp(t, { heartbeat: false })
  app.post('/hang', (_request, reply) => reply.sse(app.sse.resumable('hang', async function * () {
    yield 'one'
    await new Promise(() => {}) // never settles, never looks at its signal
  }, { ttl: 200 })))
  const reader = await openStream(app, '/hang', { method: 'POST' })
  await reader.take(1)
  t.equal(await app.sse.cancel('hang'), true)
  await reader.ended
  t.equal(reasonOf(reader.events.at(-1)), 'cancelled')
  t.equal((await app.inject({ method: 'POST', url: '/hang', headers: sse })).statusCode, 409, 'used: taken while its record lives')
  await sleep(300)
  const again = await openStream(app, '/hang', { method: 'POST' })
  await again.take(1)
  t.pass('once its record expired, the key can be used again')
  await app.sse.cancel('hang')
  await again.ended
})

t.test('A4. in memory, a finished stream nobody reads stays readable from its start while its record lives, however short channelIdleTimeout is; then both go', async t => {
  const counts = fresh()
  const { app } = await chatApp(t, counts, 10, { channelIdleTimeout: 40 }, { ttl: 600 })
  const first = await openStream(app, '/chat/a4', { method: 'POST' })
  await first.ended
  await sleep(250) // several sweeps of idle channels
  const again = await openStream(app, '/chat/a4')
  await again.ended
  t.strictSame(numbers(again.events), Array.from({ length: 10 }, (_, i) => i), 'all of it, no gap notice')
  t.equal(reasonOf(again.events.at(-1)), 'done')
  await sleep(700)
  t.equal((await app.inject({ url: '/chat/a4', headers: sse })).statusCode, 404, 'past its ttl: the record is gone')
  const replay = app.sse.channel('sse-resumable:a4').subscribe({ lastEventId: first.events[0]!.id! })[Symbol.asyncIterator]()
  t.equal((await replay.next()).value?.event, GAP_EVENT, 'and its history is no longer held')
  await replay.return?.()
})

t.test('A6. app.close() while a generation is starting: once close resolves, it never ran, or it ran and was finalized', async t => {
  for (let attempt = 0; attempt < 20; attempt++) {
    const counts = fresh()
    const { app } = await chatApp(t, counts, 1000)
    await app.ready()
    const starting = app.inject({ method: 'POST', url: '/chat/a6', headers: sse })
    await sleep(attempt % 4)
    await app.close()
    await starting
    t.equal(counts.opened, counts.finalized, `attempt ${attempt}: opened ${counts.opened}, finalized ${counts.finalized}`)
  }
})

t.test('A10. cancelled while it starts, a generation is never opened; its readers get the end', async t => {
  const counts = fresh()
  const { app } = await chatApp(t, counts, 1000)
  const source = app.sse.resumable('a10', tokens(counts, 1000)) as (ctx: unknown) => Promise<AsyncIterable<TestEvent>>
  const starting = source({ signal: new AbortController().signal, request: undefined })
  t.equal(await app.sse.cancel('a10'), true, 'a starting generation can be cancelled')
  const seen: unknown[] = []
  for await (const message of await starting) seen.push(message)
  t.equal(counts.opened, 0, 'never opened')
  t.equal(reasonOf(seen.at(-1) as TestEvent), 'cancelled')
})

t.test('A11. a key whose generation ended cannot be started again while its record lives: 409, the old end stays true', async t => {
  const counts = fresh()
  const { app } = await chatApp(t, counts, 2)
  const first = await openStream(app, '/chat/a11', { method: 'POST' })
  await first.ended
  const twice = await app.inject({ method: 'POST', url: '/chat/a11', headers: sse })
  t.equal(twice.statusCode, 409)
  t.equal(counts.opened, 1)
  const stop = await app.inject({ url: '/chat/a11', headers: { ...sse, 'last-event-id': first.lastEventId! } })
  t.equal(stop.statusCode, 204)
})
