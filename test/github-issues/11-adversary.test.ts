import t, { type Test } from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import { END_EVENT, GAP_EVENT, type ResumableOptions, type SsePluginOptions } from '../../lib/index.js'
import { openStream, type TestEvent } from '../../lib/testing.js'
import { buildApp } from '../fixtures/app.js'
import { forceGc } from '../fixtures/gc.js'
import { logsOf } from '../fixtures/logs.js'
import { REDIS_URL, redisAvailable, testClient, uniquePrefix } from '../fixtures/redis.js'
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

/** A command connection of the test's own whose scripts (and its read of a record) run through `around` (which may delay, fail or run them). */
function scriptedRedis (t: Test, around: (script: string, run: () => Promise<unknown>) => Promise<unknown>): Redis {
  const client = new Redis(REDIS_URL)
  t.teardown(() => client.disconnect())
  return new Proxy(client, {
    get (target, property, receiver) {
      const value = Reflect.get(target, property, receiver)
      if (typeof property !== 'string' || !(property.startsWith('sse') || property === 'hgetall') || typeof value !== 'function') return value
      return (...args: unknown[]) => around(property, () => value.apply(target, args))
    }
  })
}

/** The scripts of a command connection of the test's own, each failing while `failing(name)` says so. */
function failingRedis (t: Test, failing: (script: string) => boolean): Redis {
  return scriptedRedis(t, (script, run) => failing(script) ? Promise.reject(new Error(`injected: ${script} failed`)) : run())
}

if (await redisAvailable(t)) {
  t.test('A1. Redis fails mid-generation and never takes its end: readers end (reason lost) at maxDuration plus the grace, and a comeback is told to stop', async t => {
    // Redis breaks right after the third value is stored: counted at the script (after the start's
    // own entry), not at the reader, which may be told of a fourth value before the test breaks anything.
    let stored = -1
    let healed = false
    const redis = failingRedis(t, script => {
      if (healed || script === 'hgetall') return false
      if (stored === 3) return true
      if (script === 'ssePublish') stored++
      return false
    })
    const counts = fresh()
    const { app, logs } = await chatApp(t, counts, 1000, { redis, redisPrefix: uniquePrefix(t), history: 2 }, { maxDuration: 500 })
    const reader = await openStream(app, '/chat/a1', { method: 'POST' })
    await reader.take(3)
    const startedAt = performance.now()
    await until(() => reader.events.some(event => event.event === END_EVENT), 20_000, 'the reader to be given an end')
    t.equal(reasonOf(reader.events.at(-1)), 'lost')
    t.ok(performance.now() - startedAt > 9000, 'not before maxDuration plus the 10 s grace (from the start)')
    await reader.ended
    t.strictSame(numbers(reader.events), [0, 1, 2], 'the reader got what was stored, and no more')
    await until(() => counts.finalized === 1, 3000, 'the generation to be finalized')
    t.equal(logsOf(logs, 'sse resumable stream end not published').length, 1, 'the end it could not publish is logged')
    const comeback = await app.inject({ url: '/chat/a1', headers: { ...sse, 'last-event-id': reader.lastEventId! } })
    t.equal(comeback.statusCode, 204, 'past waiting for an end: the client stops')
    // Redis is back, the runner long gave up: a tab opened now, without an id, gets what is kept,
    // then the lost end, whose id makes its comeback stop.
    healed = true
    const late = await openStream(app, '/chat/a1')
    await late.ended
    t.equal(late.events[0]?.event, GAP_EVENT, 'the history keeps 2 events: the first is gone, and said so')
    t.strictSame(numbers(late.events), [1, 2], 'what is kept of what was stored before Redis failed')
    t.equal(reasonOf(late.events.at(-1)), 'lost')
    t.ok(late.lastEventId !== undefined, 'the lost end carries an id')
    const lateComeback = await app.inject({ url: '/chat/a1', headers: { ...sse, 'last-event-id': late.lastEventId! } })
    t.equal(lateComeback.statusCode, 204, 'so an EventSource that had no id stops too, instead of reading the lost end again and again')
  })

  t.test('A3. the end and its record are one step: a failed try is made again under its key, one end goes out, a client holding it is told to stop at once', async t => {
    let endTries = 0
    const redis = failingRedis(t, script => script === 'sseRecordEnd' && endTries++ === 0)
    const counts = fresh()
    const { app } = await chatApp(t, counts, 3, { redis, redisPrefix: uniquePrefix(t) })
    const reader = await openStream(app, '/chat/a3', { method: 'POST' })
    await reader.ended
    t.equal(reasonOf(reader.events.at(-1)), 'done')
    t.equal(reader.events.filter(event => event.event === END_EVENT).length, 1, 'one end')
    t.equal(endTries, 2, 'the end was tried again')
    const comeback = await app.inject({ url: '/chat/a3', headers: { ...sse, 'last-event-id': reader.lastEventId! } })
    t.equal(comeback.statusCode, 204)
  })

  t.test('B3. through Redis, every client coming back the moment it got the end is told to stop (the record never lags the end)', async t => {
    const redisPrefix = uniquePrefix(t)
    const one = (await chatApp(t, fresh(), 2, { redis: REDIS_URL, redisPrefix })).app
    const two = (await chatApp(t, fresh(), 2, { redis: REDIS_URL, redisPrefix })).app
    for (let n = 0; n < 10; n++) {
      const reader = await openStream(one, `/chat/b3-${n}`, { method: 'POST' })
      await reader.ended
      const comeback = await two.inject({ url: `/chat/b3-${n}`, headers: { ...sse, 'last-event-id': reader.lastEventId! } })
      t.equal(comeback.statusCode, 204, `generation ${n}`)
    }
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

// The second review.

t.test('B1. a multiplexed stream with a quiet channel holds nothing per event (no reaction left on the quiet channel\'s wait)', async t => {
  const { app } = await buildApp(t, { heartbeat: false })
  const busy = app.sse.channel('busy')
  const source = app.sse.multiplex(['busy', 'quiet']) as (ctx: unknown) => AsyncIterable<unknown>
  const controller = new AbortController()
  const stream = source({ signal: controller.signal, lastEventId: undefined, request: undefined })[Symbol.asyncIterator]()
  const first = stream.next()
  await until(() => busy.size === 1)
  const heapAfter = async (events: number): Promise<number> => {
    for (let i = 0; i < events; i++) {
      const received = i === 0 ? first : stream.next()
      await busy.publish(i)
      await received
    }
    forceGc()
    return process.memoryUsage().heapUsed
  }
  const before = await heapAfter(5000)
  const after = await heapAfter(40_000)
  // It grew by ~830 bytes per event (33 MB here) before the fix.
  t.ok(after - before < 8 * 1024 * 1024, `heap grew ${((after - before) / 1024 / 1024).toFixed(1)} MB over 40,000 events`)
  controller.abort()
  await stream.return?.()
})

t.test('B6. a running generation holds nothing per value it yields', async t => {
  const { app } = await buildApp(t, { heartbeat: false })
  const heap: number[] = []
  app.post('/many', (_request, reply) => reply.sse(app.sse.resumable('many', async function * () {
    for (let i = 0; i < 60_000; i++) {
      if (i === 10_000 || i === 59_999) {
        forceGc()
        heap.push(process.memoryUsage().heapUsed)
      }
      yield i
    }
  })))
  const started = await app.inject({ method: 'POST', url: '/many', headers: sse, payloadAsStream: true })
  started.stream().destroy() // nobody reads: the generation runs on its own
  await until(() => heap.length === 2, 30_000, 'the generation to finish')
  // ~370 bytes per value (18 MB here) before the fix.
  t.ok(heap[1]! - heap[0]! < 8 * 1024 * 1024, `heap grew ${((heap[1]! - heap[0]!) / 1024 / 1024).toFixed(1)} MB over 50,000 values`)
})

t.test('B7. a Last-Event-ID that is not an id of this generation (forged, or from one that used the key before) reads from the start, at once', async t => {
  const counts = fresh()
  const { app } = await chatApp(t, counts, 3, {}, { ttl: 150 })
  const first = await openStream(app, '/chat/b7', { method: 'POST' })
  await first.ended
  for (const forged of ['garbage', '0-0']) {
    const again = await openStream(app, '/chat/b7', { lastEventId: forged })
    await again.ended
    t.strictSame(numbers(again.events), [0, 1, 2], `from ${forged}: all of it`)
    t.equal(reasonOf(again.events.at(-1)), 'done')
  }
  // The key used again once its record expired: a client of the first generation reads the second from its start.
  await sleep(250)
  const second = await openStream(app, '/chat/b7', { method: 'POST' })
  await second.ended
  const old = await openStream(app, '/chat/b7', { lastEventId: first.events[0]!.id! })
  await old.ended
  t.strictSame(numbers(old.events), [0, 1, 2], 'the second generation, whole: none of the first')
  t.equal(old.events.filter(event => event.event === END_EVENT).length, 1, 'one end, the second\'s')
})

t.test('B10. the names of resumable streams\' channels are the plugin\'s: the app cannot publish into a generation nor cancel through the control channel', async t => {
  const { app } = await buildApp(t)
  t.throws(() => app.sse.channel('sse-resumable:g1'), { code: 'FST_SSE_INVALID_CHANNEL' })
  t.throws(() => app.sse.channel('sse-resumable-control'), { code: 'FST_SSE_INVALID_CHANNEL' })
  t.throws(() => app.sse.multiplex(['news', 'sse-resumable:g1']), { code: 'FST_SSE_INVALID_CHANNEL' })
  t.ok(app.sse.channel('sse-resumables-are-nice-but-this-is-mine'.replace('sse-', 'my-')), 'other names are fine')
})

if (await redisAvailable(t)) {
  t.test('B2. through Redis, a finished stream read after its readers\' deadline gives its events and its real end, every time', async t => {
    const counts = fresh()
    const { app } = await chatApp(t, counts, 3, { redis: REDIS_URL, redisPrefix: uniquePrefix(t) }, { maxDuration: 100 })
    const first = await openStream(app, '/chat/b2', { method: 'POST' })
    await first.ended
    await sleep(10_500) // past start + maxDuration + the 10 s grace
    for (let n = 0; n < 5; n++) {
      const tab = await openStream(app, '/chat/b2', n % 2 === 0 ? {} : { lastEventId: first.events[0]!.id! })
      await tab.ended
      t.strictSame(numbers(tab.events), n % 2 === 0 ? [0, 1, 2] : [1, 2], `read ${n}`)
      t.equal(reasonOf(tab.events.at(-1)), 'done')
    }
  })

  t.test('B5. a slow Redis at the start does not move the readers\' deadline before the generation\'s: readers get its real end (timeout)', async t => {
    let slow = true
    // Each of the two start commands answered just under the 2 s timeout.
    const redis = scriptedRedis(t, async (script, run) => {
      if (slow && (script === 'ssePublish' || script === 'sseCreateRecord')) await sleep(1600)
      return run()
    })
    const counts = fresh()
    const { app } = await chatApp(t, counts, 100_000, { redis, redisPrefix: uniquePrefix(t) }, { maxDuration: 500 })
    const reading = openStream(app, '/chat/b5', { method: 'POST' })
    await sleep(3000)
    slow = false
    const reader = await reading
    await reader.ended
    t.equal(reasonOf(reader.events.at(-1)), 'timeout', 'its own end, not lost')
  })

  t.test('B11. Redis unavailable for a moment mid-generation: the value is published again under its key, the generation goes on, each value once', async t => {
    let failures = 0
    const redis = failingRedis(t, script => script === 'ssePublish' && failures > 0 && failures-- > 0)
    const counts = fresh()
    const { app } = await chatApp(t, counts, 30, { redis, redisPrefix: uniquePrefix(t) })
    const reader = await openStream(app, '/chat/b11', { method: 'POST' })
    await reader.take(5)
    failures = 3
    await reader.ended
    t.equal(failures, 0, 'publishes failed meanwhile')
    t.strictSame(numbers(reader.events), Array.from({ length: 30 }, (_, i) => i), 'each once, none lost')
    t.equal(reasonOf(reader.events.at(-1)), 'done')
  })
}

if (await redisAvailable(t)) {
  t.test('B11b. a value\'s publish that Redis answers too late (outcome unknown) is tried again under the same key: stored once', async t => {
    let delayNext = false
    const redis = scriptedRedis(t, async (script, run) => {
      const answer = run() // sent, and run by Redis at once
      if (script === 'ssePublish' && delayNext) {
        delayNext = false
        await sleep(2500) // answered past the plugin's 2 s command timeout
      }
      return answer
    })
    const counts = fresh()
    const { app } = await chatApp(t, counts, 12, { redis, redisPrefix: uniquePrefix(t) })
    const reader = await openStream(app, '/chat/b11b', { method: 'POST' })
    await reader.take(4)
    delayNext = true
    await reader.ended
    t.strictSame(numbers(reader.events), Array.from({ length: 12 }, (_, i) => i), 'each value once, though one was stored before its answer timed out')
    t.equal(reasonOf(reader.events.at(-1)), 'done')
  })

  t.test('B12. Redis refusing a value\'s publish for longer than the retries: the generation ends with reason error, its source finalized', async t => {
    let broken = false
    const redis = failingRedis(t, script => broken && script === 'ssePublish')
    const counts = fresh()
    const { app, logs } = await chatApp(t, counts, 100_000, { redis, redisPrefix: uniquePrefix(t) })
    const reader = await openStream(app, '/chat/b12', { method: 'POST' })
    await reader.take(3)
    broken = true
    const brokeAt = performance.now()
    await reader.ended
    t.equal(reasonOf(reader.events.at(-1)), 'error')
    t.ok(performance.now() - brokeAt > 7000, 'not before the retries (8 s) were over')
    t.equal(counts.finalized, 1)
    t.equal(logsOf(logs, 'sse resumable stream failed').length, 1)
  })
}

// The third review.

t.test('C2. generations are limited on their own (they run whoever reads them): maxGenerations, and maxGenerationsPerClient by clientKey, until each source is finalized', async t => {
  const counts = fresh()
  const { app } = await chatApp(t, counts, 100_000, { maxGenerations: 3, maxGenerationsPerClient: 2, clientKey: request => String(request.headers['x-user']) })
  const start = async (id: string, user: string) => {
    const started = await app.inject({ method: 'POST', url: `/chat/${id}`, headers: { ...sse, 'x-user': user }, payloadAsStream: true })
    started.stream().destroy() // the client leaves at once; the generation runs on
    return started.statusCode
  }
  t.strictSame([await start('c2-1', 'ann'), await start('c2-2', 'ann')], [200, 200])
  const third = await app.inject({ method: 'POST', url: '/chat/c2-3', headers: { ...sse, 'x-user': 'ann' } })
  t.equal(third.statusCode, 429, 'a client past its own limit')
  t.equal(third.json().code, 'FST_SSE_LIMIT_REACHED')
  t.equal(await start('c2-4', 'bob'), 200, 'another client still may')
  t.equal((await app.inject({ method: 'POST', url: '/chat/c2-5', headers: { ...sse, 'x-user': 'cid' } })).statusCode, 429, 'the app past its limit')
  t.equal(counts.opened, 3, 'nothing ran for a refused start')
  t.equal(await app.sse.cancel('c2-1'), true)
  await until(() => counts.finalized === 1, 3000, 'the cancelled source to be finalized')
  t.equal(await start('c2-6', 'ann'), 200, 'a slot is free again once a source is finalized')
  for (const id of ['c2-2', 'c2-4', 'c2-6']) await app.sse.cancel(id)
})

t.test('C2b. a limit that is not a positive integer is refused at registration', async t => {
  await t.rejects(buildApp(t, { maxGenerations: 0 }), { code: 'FST_SSE_INVALID_OPTION' })
  await t.rejects(buildApp(t, { maxGenerationsPerClient: -1 }), { code: 'FST_SSE_INVALID_OPTION' })
})

if (await redisAvailable(t)) {
  t.test('C1. a client told the end was lost stops for good, even when the real end is stored later', async t => {
    const redisPrefix = uniquePrefix(t)
    const redis = failingRedis(t, script => script === 'sseRecordEnd')
    const counts = fresh()
    const { app } = await chatApp(t, counts, 100_000, { redis, redisPrefix }, { maxDuration: 100 })
    const reader = await openStream(app, '/chat/c1', { method: 'POST' })
    await reader.ended
    t.equal(reasonOf(reader.events.at(-1)), 'lost')
    const tab = await openStream(app, '/chat/c1')
    await tab.ended
    t.strictSame(numbers(tab.events), numbers(reader.events), 'a tab opened then, without an id: all that was kept, no notice')
    t.equal(reasonOf(tab.events.at(-1)), 'lost', 'then the lost end')
    // The end stored after the readers gave up (a last try that Redis ran late).
    const admin = testClient(t)
    await admin.hset(`${redisPrefix}{sse-resumable:c1}:record`, 'end', '99999999999999-0')
    const comeback = await app.inject({ url: '/chat/c1', headers: { ...sse, 'last-event-id': reader.lastEventId! } })
    t.equal(comeback.statusCode, 204)
  })

  t.test('C4. a start that meets Redis failing fails its request (503), runs nothing, and holds no key nor slot', async t => {
    let broken = true
    const redis = failingRedis(t, script => broken && script === 'sseCreateRecord')
    const counts = fresh()
    const { app } = await chatApp(t, counts, 2, { redis, redisPrefix: uniquePrefix(t), maxGenerations: 1 })
    const refused = await app.inject({ method: 'POST', url: '/chat/c4', headers: sse })
    t.equal(refused.statusCode, 503)
    t.equal(refused.json().code, 'FST_SSE_BACKEND_UNAVAILABLE')
    t.equal(counts.opened, 0)
    broken = false
    const started = await openStream(app, '/chat/c4', { method: 'POST' })
    await started.ended
    t.equal(reasonOf(started.events.at(-1)), 'done', 'the same key, and the one slot, are free')
  })

  t.test('C3. a resume that meets Redis failing is told to come back (200, retry, Retry-After), never an error status that stops an EventSource', async t => {
    let broken = false
    const redis = failingRedis(t, script => broken && script === 'hgetall')
    const counts = fresh()
    const { app, logs } = await chatApp(t, counts, 3, { redis, redisPrefix: uniquePrefix(t) })
    const first = await openStream(app, '/chat/c3', { method: 'POST' })
    await first.ended
    broken = true
    const refused = await app.inject({ url: '/chat/c3', headers: { ...sse, 'last-event-id': first.events[0]!.id! } })
    t.equal(refused.statusCode, 200)
    t.equal(refused.headers['retry-after'], '2')
    const retry = Number(/^retry: (\d+)$/m.exec(refused.body)?.[1])
    t.ok(retry >= 2000 && retry < 4000, `told to come back after ${retry} ms`)
    t.notMatch(refused.body, /^data:/m, 'no event')
    t.equal(logsOf(logs, 'sse resumable stream not read: backend unavailable').length, 1)
    broken = false
    const again = await openStream(app, '/chat/c3', { lastEventId: first.events[0]!.id! })
    await again.ended
    t.strictSame(numbers(again.events), [1, 2], 'back: the rest')
  })
}
