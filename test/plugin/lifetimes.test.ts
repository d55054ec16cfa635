import t from 'tap'
import type { Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { kStreams, type StreamRegistry } from '../../lib/streams.js'
import { buildApp } from '../fixtures/app.js'
import { bodyOf, rawGet, urlOf } from '../fixtures/http.js'
import { logsOf } from '../fixtures/logs.js'
import { untilAborted } from '../fixtures/sources.js'
import { until } from '../fixtures/wait.js'

// How long a stream may live: maxLifetime, a per-stream endAt (a credential's expiry), and a write
// deadline for clients that stop reading.

const ES = { accept: 'text/event-stream' }
const FRAME = 64 * 1024

/** A source that yields one event then waits for its stream to end, counting finalizations. */
const waiting = () => untilAborted()

/** The time from a request to the end of its response, and the body. */
async function timed (url: string): Promise<{ ms: number, body: string }> {
  const started = performance.now()
  const { response } = await rawGet(url, ES)
  const body = await bodyOf(response)
  return { ms: performance.now() - started, body }
}

t.test('maxLifetime ends a stream after 90 to 100% of it, with a jittered retry: so clients come back spread out', async t => {
  const { app, logs } = await buildApp(t, { maxLifetime: 400, retry: 1000 })
  const { counts, source } = waiting()
  app.get('/events', (_request, reply) => reply.sse(source))
  const url = (await urlOf(app)) + '/events'
  const ends = await Promise.all(Array.from({ length: 8 }, () => timed(url)))
  for (const { ms, body } of ends) {
    t.ok(ms >= 355 && ms < 3000, `ended after ${Math.round(ms)} ms (lifetime 400: 360 at the earliest)`)
    t.match(body, /^retry: 1000\n\ndata: hello\n\nretry: (\d+)\n\n$/)
    const retry = Number(/retry: (\d+)\n\n$/.exec(body)![1])
    t.ok(retry >= 1000 && retry < 2000, `told to come back after ${retry} ms: retry plus up to as much again`)
  }
  t.ok(new Set(ends.map(end => end.body)).size > 1, 'not every client was told the same delay')
  await until(() => counts.finalized === 8)
  t.equal(app.sse.stats().ends['max-lifetime'], 8)
  t.equal(logsOf(logs, 'sse stream ended').filter(line => line.reason === 'max-lifetime').length, 8)
})

t.test('maxLifetime per route and per stream overrides the plugin\'s; false turns it off', async t => {
  const { app } = await buildApp(t, { maxLifetime: 60_000 })
  const { source } = waiting()
  app.get('/short', { sse: { maxLifetime: 200 } }, (_request, reply) => reply.sse(source))
  app.get('/shorter', (_request, reply) => reply.sse(source, { maxLifetime: 100 }))
  app.get('/forever', { sse: { maxLifetime: 100 } }, (_request, reply) => reply.sse(source, { maxLifetime: false }))
  const base = await urlOf(app)
  const short = await timed(base + '/short')
  t.ok(short.ms >= 175 && short.ms < 5000, `route: ${Math.round(short.ms)} ms`)
  const shorter = await timed(base + '/shorter')
  t.ok(shorter.ms >= 85 && shorter.ms < 5000, `stream: ${Math.round(shorter.ms)} ms`)
  const forever = await rawGet(base + '/forever', ES)
  await sleep(400)
  t.notOk(forever.response.complete, 'a stream without a lifetime is still open after 4 times the route\'s')
  forever.request.destroy()
})

t.test('endAt ends the stream at that time (a credential\'s expiry), reason expired, with a retry: to come back and re-authenticate', async t => {
  const { app, logs } = await buildApp(t)
  const { counts, source } = waiting()
  app.get('/events', (request, reply) => reply.sse(source, { endAt: Number(request.headers['x-expires']) }))
  app.get('/date', (_request, reply) => reply.sse(source, { endAt: new Date(Date.now() + 150) }))
  const base = await urlOf(app)
  const started = performance.now()
  const { response } = await rawGet(base + '/events', { ...ES, 'x-expires': String(Date.now() + 300) })
  const body = await bodyOf(response)
  const ms = performance.now() - started
  t.ok(ms >= 280 && ms < 5000, `ended after ${Math.round(ms)} ms, at its endAt (300)`)
  t.match(body, /^data: hello\n\nretry: \d+\n\n$/)
  const byDate = await timed(base + '/date')
  t.ok(byDate.ms >= 130 && byDate.ms < 5000, `a Date works too: ${Math.round(byDate.ms)} ms`)
  await until(() => counts.finalized === 2)
  t.equal(app.sse.stats().ends.expired, 2)
  t.equal(logsOf(logs, 'sse stream ended').filter(line => line.reason === 'expired').length, 2)
})

t.test('endAt before maxLifetime wins, and maxLifetime before endAt wins', async t => {
  const { app } = await buildApp(t, { maxLifetime: 200 })
  const { source } = waiting()
  app.get('/events', (request, reply) => reply.sse(source, { endAt: Date.now() + Number(request.headers['x-in']) }))
  const base = await urlOf(app)
  await bodyOf((await rawGet(base + '/events', { ...ES, 'x-in': '60000' })).response)
  await bodyOf((await rawGet(base + '/events', { ...ES, 'x-in': '50' })).response)
  const { ends } = app.sse.stats()
  t.equal(ends['max-lifetime'], 1, 'the lifetime came first for the stream that expires in a minute')
  t.equal(ends.expired, 1, 'endAt came first for the stream that expires in 50 ms')
})

t.test('an endAt already past opens nothing: the client gets its head and a retry: at once', async t => {
  const { app } = await buildApp(t)
  const { counts, source } = waiting()
  app.get('/events', (_request, reply) => reply.sse(source, { endAt: Date.now() - 1000 }))
  const { ms, body } = await timed((await urlOf(app)) + '/events')
  t.match(body, /^retry: \d+\n\n$/)
  t.ok(ms < 2000, `at once (${Math.round(ms)} ms)`)
  t.equal(counts.opened, 0, 'the source was never opened')
  t.equal(app.sse.stats().ends.expired, 1)
})

t.test('an invalid endAt is FST_SSE_INVALID_OPTION before anything starts', async t => {
  const { app } = await buildApp(t)
  const { counts, source } = waiting()
  app.get('/events', (_request, reply) => reply.sse(source, { endAt: 'tomorrow' as unknown as number }))
  const response = await app.inject({ url: '/events', headers: ES })
  t.equal(response.statusCode, 500)
  t.match(response.json(), { code: 'FST_SSE_INVALID_OPTION', message: /endAt/ })
  t.equal(counts.opened, 0)
})

t.test('writeTimeout: a client that reads nothing is cut once its socket stayed full that long, and its source finalized', async t => {
  const { app, logs } = await buildApp(t, { writeTimeout: 300, heartbeat: 50 })
  let finalized = false
  let pulled = 0
  let socket: Socket | null = null
  app.get('/events', (_request, reply) => {
    socket = reply.raw.socket
    return reply.sse(async function * () {
      try {
        for (;;) { pulled++; yield 'x'.repeat(FRAME) }
      } finally {
        finalized = true
      }
    })
  })
  const { request, response } = await rawGet((await urlOf(app)) + '/events', ES)
  t.teardown(() => { request.destroy() })
  response.pause()
  let last = -1
  await until(() => { const still = pulled === last; last = pulled; return still }, 5000, 'the generator to be held')
  const heldAt = performance.now()
  await until(() => finalized, 5000, 'the source to be finalized')
  const ms = performance.now() - heldAt
  t.ok(ms < 4000, `finalized ${Math.round(ms)} ms after the socket filled (writeTimeout 300)`)
  t.ok(socket!.destroyed, 'the connection was cut (the client, reading nothing, cannot tell yet)')
  t.equal(app.sse.stats().ends['write-timeout'], 1)
  t.match(logsOf(logs, 'sse stream ended'), [{ reason: 'write-timeout' }])
})

t.test('writeTimeout counts one stretch of a full socket: a client that reads slowly but steadily is never cut', async t => {
  const { app } = await buildApp(t, { writeTimeout: 1000 })
  const COUNT = 120
  app.get('/events', (_request, reply) => reply.sse(async function * () {
    for (let i = 0; i < COUNT; i++) yield `${i} ${'x'.repeat(FRAME)}`
  }))
  const { response } = await rawGet((await urlOf(app)) + '/events', ES)
  let received = 0
  let pauses = 0
  response.on('data', (chunk: Buffer) => {
    // Slow: a pause of 150 ms after every 512 KB, each far shorter than the deadline, longer in all.
    if (Math.floor((received + chunk.length) / 2 ** 19) > Math.floor(received / 2 ** 19)) {
      pauses++
      response.pause()
      setTimeout(() => response.resume(), 150).unref()
    }
    received += chunk.length
  })
  await new Promise(resolve => response.on('close', resolve))
  t.ok(received > COUNT * FRAME, `every byte arrived (${received}), after ${pauses} pauses of 150 ms`)
  t.equal(app.sse.stats().ends['source-done'], 1)
  t.equal(app.sse.stats().ends['write-timeout'], 0)
})

t.test('writeTimeout false: a client that reads nothing holds its stream (and nothing else) as before', async t => {
  const { app } = await buildApp(t, { writeTimeout: false })
  let pulled = 0
  app.get('/events', (_request, reply) => reply.sse(async function * () { for (;;) { pulled++; yield 'x'.repeat(FRAME) } }))
  const { request, response } = await rawGet((await urlOf(app)) + '/events', ES)
  response.pause()
  let last = -1
  await until(() => { const still = pulled === last; last = pulled; return still }, 5000, 'the generator to be held')
  await sleep(500)
  t.equal(app.sse.stats().open, 1, 'still open')
  request.destroy()
})

t.test('a stream ended by its lifetime behind a full socket is cut after writeTimeout, not left open', async t => {
  const { app } = await buildApp(t, { writeTimeout: 300, maxLifetime: 200 })
  let socket: Socket | null = null
  app.get('/events', (_request, reply) => {
    socket = reply.raw.socket
    return reply.sse(async function * () { for (;;) yield 'x'.repeat(FRAME) })
  })
  const { request, response } = await rawGet((await urlOf(app)) + '/events', ES)
  t.teardown(() => { request.destroy() })
  response.pause()
  await until(() => app.sse.stats().ends['max-lifetime'] === 1, 5000, 'the lifetime to end it')
  t.notOk(socket!.destroyed, 'ended, its last frames wait behind the full socket')
  await until(() => socket!.destroyed, 5000, 'the connection to be cut')
  t.pass('cut: the last frames could not get through a client that reads nothing')
})

t.test('an end beyond one timer\'s reach (Node caps a delay at 2^31 - 1 ms, about 24.8 days) is reached in steps', async t => {
  const { app } = await buildApp(t)
  app.get('/events', (_request, reply) => reply.sse(untilAborted('a').source, { endAt: Date.now() + 40 * 24 * 3600 * 1000 }))
  const { request } = await rawGet((await urlOf(app)) + '/events', ES)
  t.teardown(() => { request.destroy() })
  await until(() => app.sse.stats().open === 1)
  const pump = (app as unknown as { [kStreams]: StreamRegistry })[kStreams].find(() => true)!
  // What the capped timer does when it fires, ~24.8 days in: the end is still 15 days away.
  pump.lifetimeDue()
  t.notOk(pump.ended, 'not ended early: it waits on')
  t.equal(app.sse.stats().open, 1)
})

t.test('writeTimeout: a socket full for a moment, then drained, is not cut when the deadline comes round', async t => {
  const { app } = await buildApp(t, { writeTimeout: 300, heartbeat: false })
  app.get('/events', (_request, reply) => reply.sse(async function * () {
    for (let i = 0; i < 40; i++) yield 'x'.repeat(FRAME)
    // Still open when the deadline's timer fires, long after the socket drained.
    await sleep(700)
    yield 'last'
  }))
  const { response } = await rawGet((await urlOf(app)) + '/events', ES)
  response.pause()
  await sleep(100)
  response.resume()
  const body = await bodyOf(response)
  t.match(body, /data: last\n\n$/)
  t.equal(app.sse.stats().ends['source-done'], 1)
  t.equal(app.sse.stats().ends['write-timeout'], 0)
})
