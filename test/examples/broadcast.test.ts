import t from 'tap'
import { randomUUID } from 'node:crypto'
import { openStream, type TestEvent, type TestStream } from '../../lib/testing.js'
import { build } from '../../examples/broadcast.js'
import { closeApp, logCollector } from '../fixtures/examples.js'
import { REDIS_URL, redisAvailable, uniquePrefix } from '../fixtures/redis.js'

const weather = (event: TestEvent | undefined) => JSON.parse(event?.data ?? 'null')

/** The events of `stream` from the one with id `id` on: none until that one has arrived. */
function from (stream: TestStream, id: string | undefined): TestEvent[] {
  const at = stream.events.findIndex(event => event.id === id)
  return at === -1 ? [] : stream.events.slice(at)
}

/** The events of `stream` after the one with id `lastId`. */
function after (stream: TestStream, lastId: string): TestEvent[] {
  return from(stream, lastId).slice(1)
}

/**
 * Wait until `stream` has received `count` events from the one with id `id` on. Updates keep coming
 * every few ms, so a wait for an id the stream never gets fails here, not at tap's timeout.
 */
async function receivedFrom (stream: TestStream, id: string | undefined, count: number, timeoutMs = 5000): Promise<void> {
  const deadline = performance.now() + timeoutMs
  // take() hands out received events first, then waits for new ones.
  while (from(stream, id).length < count) {
    const left = deadline - performance.now()
    if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms: ${from(stream, id).length} of ${count} events from id ${id}`)
    await stream.take(1, left)
  }
}

/** Wait until `stream` has received `count` events after the one with id `lastId`. */
async function receivedAfter (stream: TestStream, lastId: string, count: number): Promise<void> {
  await receivedFrom(stream, lastId, 1 + count)
}

t.test('every connected client receives every update, with the same id and data', async t => {
  const app = await build({ intervalMs: 20 })
  t.teardown(() => closeApp(app))
  const first = await openStream(app, '/events')
  const second = await openStream(app, '/events')
  const seen = await second.take(4)
  // `first` was subscribed before `second` connected, so it gets every update `second` got; both
  // may have connected before the first update, or `first` may have had some before `second` came.
  const firstSeen = seen[0]?.id
  await receivedFrom(first, firstSeen, 4)
  await first.close()
  await second.close()
  t.same(from(first, firstSeen).slice(0, 4), seen)
  for (const event of seen) {
    const { temperature, humidity } = weather(event)
    t.ok(temperature >= 20 && temperature <= 30 && humidity >= 30 && humidity <= 60, `weather ${event.data}`)
  }
})

t.test('a client that reconnects with its Last-Event-ID gets the updates it missed, then live ones', async t => {
  const app = await build({ intervalMs: 20 })
  t.teardown(() => closeApp(app))
  const stayed = await openStream(app, '/events')
  const left = await openStream(app, '/events')
  await left.take(2)
  await left.close()
  const lastId = left.lastEventId as string
  // While it is away, the client that stayed gets updates it does not.
  await receivedAfter(stayed, lastId, 3)
  const missed = after(stayed, lastId).length
  const back = await openStream(app, '/events', { lastEventId: lastId })
  await back.take(missed + 2)
  await back.close()
  await receivedAfter(stayed, lastId, back.events.length)
  await stayed.close()
  t.ok(missed >= 3, `${missed} updates missed`)
  t.same(back.events, after(stayed, lastId).slice(0, back.events.length),
    'the missed updates, then the live ones: each once, in order, as the client that stayed saw them')
  t.notOk(back.events.some(event => event.event === 'sse-gap'), 'nothing was lost')
})

t.test('the producer starts when the app is ready and stops when it closes', async t => {
  const log = logCollector()
  const app = await build({ intervalMs: 60_000, logger: { stream: log } })
  t.teardown(() => app.close())
  const messages = () => log.lines.map(line => line.msg)
  t.notOk(messages().includes('weather producer started'), 'not before the app is ready')
  await app.ready()
  t.ok(messages().includes('weather producer started'))
  const started = performance.now()
  await app.close()
  t.ok(performance.now() - started < 5000, 'close does not wait for the 60 s pause')
  t.ok(messages().includes('weather producer stopped'), 'stopped before close resolved')
  t.notOk(messages().includes('weather update not published'), 'no publish after the channels closed')
})

t.test('a client with an id the channel no longer has is told so with an sse-gap event', async t => {
  const app = await build({ intervalMs: 20, channel: `weather-${randomUUID()}` })
  t.teardown(() => closeApp(app))
  const stream = await openStream(app, '/events', { lastEventId: '999999' })
  const [gap] = await stream.take(1)
  await stream.close()
  t.equal(gap?.event, 'sse-gap')
  t.same(weather(gap), { lastEventId: '999999' })
})

t.test('through Redis, a client of one app receives the updates another app produces', async t => {
  if (!await redisAvailable(t)) return
  const sse = { redis: REDIS_URL, redisPrefix: uniquePrefix(t) }
  // The producer of `quiet` publishes once, when it is ready, then sleeps for a minute.
  const quiet = await build({ intervalMs: 60_000, sse })
  t.teardown(() => closeApp(quiet))
  const busy = await build({ intervalMs: 20, sse })
  t.teardown(() => closeApp(busy))
  await busy.ready()
  const stream = await openStream(quiet, '/events')
  const updates = await stream.take(5)
  await stream.close()
  t.equal(new Set(updates.map(update => update.id)).size, 5, 'five distinct updates, from the busy app')
})

t.test('through Redis, a client that comes back to a restarted app gets what it missed, no gap', async t => {
  if (!await redisAvailable(t)) return
  const sse = { redis: REDIS_URL, redisPrefix: uniquePrefix(t) }
  const before = await build({ intervalMs: 20, sse })
  await before.ready()
  // Every update the first app publishes, as an in-process subscriber sees them.
  const published: Array<{ id: string, data: string }> = []
  const recorded = (async () => {
    for await (const message of before.sse.channel('weather').subscribe()) {
      published.push({ id: message.id, data: JSON.stringify(message.data) })
    }
  })()
  const stream = await openStream(before, '/events')
  await stream.take(2)
  await stream.close()
  const lastId = stream.lastEventId as string
  // The producer goes on for a while after this client left, then the app stops.
  await new Promise(resolve => setTimeout(resolve, 100))
  await closeApp(before)
  await recorded
  const missed = published.slice(published.findIndex(update => update.id === lastId) + 1)
  t.ok(missed.length >= 2, `${missed.length} updates published after ${lastId} while the client was away`)

  const after = await build({ intervalMs: 60_000, sse })
  t.teardown(() => closeApp(after))
  const back = await openStream(after, '/events', { lastEventId: lastId })
  const replayed = await back.take(missed.length)
  await back.close()
  t.same(replayed.map(event => ({ id: event.id, data: event.data })), missed,
    'exactly the updates it missed, from the history in Redis, though the app that published them is gone')
})

t.test('the weather channel is declared: a publish that is not an update is refused, an update goes out as its schema writes it', async t => {
  const app = await build({ intervalMs: 60_000 })
  t.teardown(() => closeApp(app))
  await app.ready()
  const channel = app.sse.channel('weather')
  await t.rejects(channel.publish({ event: 'storm', data: { wind: 120 } }), { code: 'FST_SSE_UNDECLARED_EVENT' })
  const stream = await openStream(app, '/events')
  const id = await channel.publish({ humidity: 45, temperature: 21, station: 'not in the schema' })
  const [update] = await stream.take(1)
  await stream.close()
  t.equal(update?.id, id)
  t.equal(update?.data, '{"temperature":21,"humidity":45}', 'schema order, nothing undeclared')
})
