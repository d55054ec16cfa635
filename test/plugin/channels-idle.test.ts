import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { GAP_EVENT } from '../../lib/index.js'
import { openStream } from '../../lib/testing.js'
import { buildApp } from '../fixtures/app.js'
import { publishMany, read } from '../fixtures/channels.js'

// Channels nobody uses are forgotten (channelIdleTimeout): names taken from URLs never add up. What a
// user kept of one still works, and one name never has two sets of subscribers.

const IDLE_MS = 100
/** Past the idle timeout and the sweep that notices it (every quarter of the timeout). */
const FORGOTTEN_AFTER = 2 * IDLE_MS

t.test(`a channel without subscriber or publish for channelIdleTimeout is forgotten with its history: an old Last-Event-ID then gets a "${GAP_EVENT}" event`, async t => {
  const { app } = await buildApp(t, { channelIdleTimeout: IDLE_MS })
  app.get<{ Params: { user: string } }>('/notify/:user', (request, reply) =>
    reply.sse(app.sse.channel(`user:${request.params.user}`).subscribe({ lastEventId: request.lastEventId })))
  const first = await openStream(app, '/notify/ada')
  const channel = app.sse.channel('user:ada')
  const ids = await publishMany(channel, 2)
  t.same((await first.take(2)).map(event => event.id), ids)
  await first.close()

  await sleep(FORGOTTEN_AFTER)
  const again = app.sse.channel('user:ada')
  t.not(again, channel, 'app.sse.channel() makes a new one')
  const resumed = await openStream(app, '/notify/ada', { lastEventId: ids[0]! })
  const [gap] = await resumed.take(1)
  t.match(gap, { event: GAP_EVENT, id: ids[0] }, 'the history went with it: the client is told it may have missed events')
  const next = await again.publish({ n: 2 })
  t.same((await resumed.take(1)).map(event => event.id), [next], 'then it is a channel like any other')
  t.equal(again.size, 1)
  await resumed.close()
})

t.test('a channel is never forgotten while it has a subscriber; its idle time starts when the last one leaves', async t => {
  const { app } = await buildApp(t, { channelIdleTimeout: IDLE_MS })
  const channel = app.sse.channel('kept')
  const ids = await publishMany(channel, 2)
  const subscriber = read(channel.subscribe())
  await sleep(3 * IDLE_MS)
  t.equal(app.sse.channel('kept'), channel, 'idle for three timeouts, but listened to')
  const replaying = read(channel.subscribe({ lastEventId: ids[0] }))
  t.same((await replaying.take(1)).map(message => message.id), [ids[1]], 'its history is whole')
  await subscriber.iterator.return!()
  await replaying.iterator.return!()
  await sleep(IDLE_MS / 2)
  t.equal(app.sse.channel('kept'), channel, 'not yet forgotten: its idle time began when its last subscriber left')
  await sleep(FORGOTTEN_AFTER)
  t.not(app.sse.channel('kept'), channel, 'then forgotten')
})

t.test('publishing keeps a channel: one published on more often than channelIdleTimeout is never forgotten', async t => {
  const { app } = await buildApp(t, { channelIdleTimeout: IDLE_MS })
  const channel = app.sse.channel('busy')
  const ids: string[] = []
  for (let n = 0; n < 8; n++) {
    ids.push(await channel.publish({ n }))
    await sleep(IDLE_MS / 2)
  }
  t.equal(app.sse.channel('busy'), channel)
  const replayed = await read(channel.subscribe({ lastEventId: ids[0] })).take(7)
  t.same(replayed.map(message => message.id), ids.slice(1), 'no gap: nothing was forgotten')
})

t.test('a channel object kept from before it was forgotten takes its name back when it is used again', async t => {
  const { app } = await buildApp(t, { channelIdleTimeout: IDLE_MS })
  const published = app.sse.channel('by-publish')
  const subscribed = app.sse.channel('by-subscribe')
  await sleep(FORGOTTEN_AFTER)
  t.equal(published.size, 0, 'forgotten, and nothing holds its name')
  await published.publish('again')
  t.equal(app.sse.channel('by-publish'), published, 'a publish takes the name back')
  const reader = read(subscribed.subscribe())
  t.equal(app.sse.channel('by-subscribe'), subscribed, 'so does a subscribe')
  const id = await app.sse.channel('by-subscribe').publish('to the subscriber')
  t.same((await reader.take(1)).map(message => message.id), [id])
})

t.test('a channel object kept from before it was forgotten hands over to the one that took its name: subscribers are never split', async t => {
  const { app } = await buildApp(t, { channelIdleTimeout: IDLE_MS })
  const old = app.sse.channel('shared')
  // The README's route, holding the channel object for the life of the app.
  app.get('/shared', (request, reply) => reply.sse(old.subscribe({ lastEventId: request.lastEventId })))
  await sleep(FORGOTTEN_AFTER)
  const current = app.sse.channel('shared')
  t.not(current, old)
  const client = await openStream(app, '/shared')
  const inProcess = read(current.subscribe())
  t.equal(current.size, 2, 'both subscribers are on the channel in use')
  t.equal(old.size, 2, 'and the old object says so')
  const fromOld = await old.publish('from the old object')
  const fromCurrent = await current.publish('from the current one')
  t.same((await client.take(2)).map(event => event.id), [fromOld, fromCurrent])
  t.same((await inProcess.take(2)).map(message => message.id), [fromOld, fromCurrent])
  await client.close()
  t.equal(current.size, 1)
})

t.test('one sweep timer per app whatever the number of channels, unref\'d, cleared on close; a long timeout is not cut short', async t => {
  const intervals = t.capture(globalThis, 'setInterval', globalThis.setInterval)
  const cleared = t.capture(globalThis, 'clearInterval', globalThis.clearInterval)
  const { app } = await buildApp(t, { channelIdleTimeout: 4000, heartbeat: false })
  for (let i = 0; i < 100; i++) read(app.sse.channel(`c${i}`).subscribe())
  const sweeps = intervals().filter(call => call.args[1] === 1000)
  t.equal(sweeps.length, 1, 'every quarter of the timeout, for every channel')
  const timer = (sweeps[0] as { returned: NodeJS.Timeout }).returned
  t.equal(timer.hasRef(), false, 'it never keeps the process alive')
  await app.close()
  t.ok(cleared().some(call => call.args[0] === timer), 'cleared when the app closes')

  // Node runs a timer of more than 2^31 - 1 ms after 1 ms: a sweep every millisecond would be the result.
  await buildApp(t, { channelIdleTimeout: 2 ** 40 })
  t.equal(intervals().at(-1)!.args[1], 2 ** 31 - 1)
})
