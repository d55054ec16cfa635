import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { GAP_EVENT } from '../../lib/index.js'
import { buildApp } from '../fixtures/app.js'
import { publishMany, read } from '../fixtures/channels.js'
import { announcementOf, REDIS_URL, redisAvailable, streamOf, testClient, uniquePrefix } from '../fixtures/redis.js'
import { deferred } from '../fixtures/wait.js'

// Issue 8, what the fault-injection suite (test/faults) found once the failure modes were closed:
// each case here failed before its fix. Redis losing its data is played by replacing the stream with
// one whose first entry follows nothing (as a Redis restarted without its data writes it) and
// announcing that entry by hand; a busy event loop, by holding back the answer of a replay. So the
// order of each race is the test's, not the scheduler's.

const textBody = (text: string): string => JSON.stringify([1, text, null, null, null])

/** An app on the shared Redis (through `client` when given) with a subscriber of 'news' that stays, and the two events it has. */
async function newsApp (t: Test, client?: Redis) {
  const prefix = uniquePrefix(t)
  const admin = testClient(t)
  const { app } = await buildApp(t, { redis: client ?? REDIS_URL, redisPrefix: prefix })
  const channel = app.sse.channel('news')
  const staying = read(channel.subscribe())
  const [first, second] = await publishMany(channel, 2) as [string, string]
  await staying.take(2)
  return { prefix, admin, channel, staying, first, second }
}

/** A client of the test's own for an app: its replays from `from` are read at once, and answered on `release()`. */
function holdingReplays (t: Test): { client: Redis, hold (from: string): { reads: () => number, release: () => void } } {
  const client = new Redis(REDIS_URL)
  t.teardown(() => client.disconnect())
  return {
    client,
    hold (from) {
      const held = deferred()
      let reads = 0
      const scripted = client as unknown as { sseReplay (stream: string, after: string, count: number): Promise<unknown> }
      const sseReplay = scripted.sseReplay.bind(client)
      scripted.sseReplay = async (stream, after, count) => {
        const answer = sseReplay(stream, after, count)
        if (after !== from) return answer
        reads++
        await held.promise
        return answer
      }
      return { reads: () => reads, release: () => held.resolve() }
    }
  }
}

/** The channel's history replaced by one new entry, as a Redis that lost its data would hold it; announced on `announce()`. */
async function loseHistory (admin: Redis, prefix: string, channel: string): Promise<{ id: string, announce: () => Promise<unknown> }> {
  await admin.del(streamOf(prefix, channel))
  const id = await admin.xadd(streamOf(prefix, channel), '*', 'p', '', 'b', textBody('after the loss')) as string
  return { id, announce: () => admin.publish(announcementOf(prefix, channel), `${id}  ${textBody('after the loss')}`) }
}

if (await redisAvailable(t)) {
  t.test('1. a client that resumed after the loss, its replay done, gets no gap notice of the app\'s feed (for an id it does not have)', async t => {
    const { prefix, admin, channel, staying, first, second } = await newsApp(t)
    const lost = await loseHistory(admin, prefix, 'news')
    // Resumes from an older id: its replay, from the new history, says what is gone and gives what is kept.
    const resumed = read(channel.subscribe({ lastEventId: first }))
    const replayed = await resumed.take(2)
    t.same(replayed.map(message => [message.event, message.id]), [[GAP_EVENT, first], [undefined, lost.id]])
    // Then the app's feed sees the hole after its last id, and tells its subscribers.
    await lost.announce()
    const [notice, event] = await staying.take(2)
    t.match(notice, { event: GAP_EVENT, id: second }, 'the subscriber that had the feed\'s last id is told')
    t.equal(event!.id, lost.id)
    const next = await channel.publish('next')
    await staying.take(1)
    t.same((await resumed.take(1)).map(message => message.id), [next],
      'the resumed one goes on with the next event: a notice naming another id would move its Last-Event-ID')
  })

  t.test('2. a client resuming while the feed tells of the loss gets its replay\'s notice, not the feed\'s after it', async t => {
    const { client, hold } = holdingReplays(t)
    const { prefix, admin, channel, staying, first, second } = await newsApp(t, client)
    // Its replay is answered once the feed has told of the loss: the feed's notice waits with the live events.
    const replays = hold(first)
    const lost = await loseHistory(admin, prefix, 'news')
    const resumed = read(channel.subscribe({ lastEventId: first }))
    await lost.announce()
    const [notice, event] = await staying.take(2)
    t.match(notice, { event: GAP_EVENT, id: second })
    t.equal(event!.id, lost.id)
    replays.release()
    t.same((await resumed.take(2)).map(message => [message.event, message.id]), [[GAP_EVENT, first], [undefined, lost.id]],
      'its replay: its own notice, and what is kept')
    const next = await channel.publish('next')
    t.same((await resumed.take(1)).map(message => message.id), [next],
      'then the next event: the feed\'s notice, which waited with the live events, named an id it does not have')
  })

  t.test('3. a client resuming from the id of a replay still in flight loses nothing delivered since that replay was read', async t => {
    const { client, hold } = holdingReplays(t)
    const { channel, staying, first, second } = await newsApp(t, client)
    const replays = hold(first)
    const early = read(channel.subscribe({ lastEventId: first }))
    const twin = read(channel.subscribe({ lastEventId: first }))
    // A subscription reads its replay once the code that subscribed has run on (a microtask).
    await Promise.resolve()
    t.equal(replays.reads(), 1, 'two clients resuming from the same id with nothing delivered in between: one read')
    const [third] = await publishMany(channel, 1, 2)
    await staying.take(1)
    // Delivered live before this client came: only a replay read now has it.
    const late = read(channel.subscribe({ lastEventId: first }))
    await Promise.resolve()
    t.equal(replays.reads(), 2, 'a client that comes after an event was delivered: a read of its own')
    replays.release()
    const [fourth] = await publishMany(channel, 1, 3)
    t.same((await early.take(3)).map(message => message.id), [second, third, fourth])
    t.same((await twin.take(3)).map(message => message.id), [second, third, fourth])
    t.same((await late.take(2)).map(message => message.id), [second, third], 'not given the answer of a replay read before it came')
  })
}
