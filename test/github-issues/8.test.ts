import t from 'tap'
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import ssePlugin, { GAP_EVENT } from '../../lib/index.js'
import { buildApp } from '../fixtures/app.js'
import { publishMany, read } from '../fixtures/channels.js'
import { logsOf } from '../fixtures/logs.js'
import {
  announcementOf, connectionsOf, ownRedis, pluginConnectionsOf, REDIS_URL, redisAvailable, streamOf, testClient, uniquePrefix
} from '../fixtures/redis.js'
import { until } from '../fixtures/wait.js'

// Issue 8: channels that lose nothing on the failure paths production has. One case per hole the
// review found through Redis; each failed on the main it was filed against (0131c5f).

const textBody = (text: string): string => JSON.stringify([1, text, null, null, null])

/** The server-side address of the connection named `name` (CLIENT KILL LADDR takes it). */
async function localAddressOf (admin: Redis, name: string): Promise<string> {
  return (await connectionsOf(admin, name))[0]?.laddr ?? 'none'
}

/** Calls of one command since the server started, from INFO commandstats. */
async function callsOf (admin: Redis, command: string): Promise<number> {
  const stats = await admin.info('commandstats')
  return Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(stats)?.[1] ?? 0)
}

if (await redisAvailable(t)) {
  t.test('1. a publish that timed out is never stored late: it rejects as outcome unknown, and a retry with its key stores it once', async t => {
    const redis = await ownRedis(t)
    const admin = testClient(t, redis.url)
    const { app } = await buildApp(t, { redis: redis.url })
    const channel = app.sse.channel('payments')
    const reader = read(channel.subscribe())
    const first = await channel.publish('first')
    // Redis hangs for writes (scripts included) longer than the plugin's 2 s command timeout.
    await admin.client('PAUSE', 4000, 'WRITE')
    await Promise.all([
      t.rejects(channel.publish('paid', { idempotencyKey: 'payment-7' }), { code: 'FST_SSE_PUBLISH_OUTCOME_UNKNOWN' }),
      t.rejects(channel.publish('paid, no key'), { code: 'FST_SSE_PUBLISH_OUTCOME_UNKNOWN' })
    ])
    await until(async () => { try { await admin.set('probe', '1'); return true } catch { return false } }, 5000)
    await sleep(300)
    t.equal(await admin.xlen(streamOf('sse:', 'payments')), 1, 'nothing was stored once Redis ran what was queued')
    const retried = await channel.publish('paid', { idempotencyKey: 'payment-7' })
    t.equal(await channel.publish('paid', { idempotencyKey: 'payment-7' }), retried, 'the retry is idempotent')
    const received = await reader.take(2)
    t.same(received.map(message => [message.id, message.data]), [[first, 'first'], [retried, 'paid']], 'each event once')
  })

  t.test('1b. a publish ioredis sends again after a reconnect (the copy already reached Redis) is stored once', async t => {
    const redis = await ownRedis(t)
    const admin = testClient(t, redis.url)
    const client = testClient(t, redis.url)
    const { app } = await buildApp(t, { redis: client })
    const channel = app.sse.channel('orders')
    await channel.publish('warm')
    redis.freeze()
    const publishing = channel.publish('once').then(id => id, (err: { code: string }) => err.code)
    await sleep(50)
    // The connection breaks with the script in Redis' socket buffer; ioredis resends it on a new one.
    ;(client as unknown as { stream: { destroy (): void } }).stream.destroy()
    await sleep(100)
    redis.thaw()
    const outcome = await publishing
    await until(async () => { try { await admin.ping(); return true } catch { return false } }, 5000)
    await sleep(300)
    const entries = await admin.xrange(streamOf('sse:', 'orders'), '-', '+')
    t.same(entries.map(([, fields]) => fields[3]), [JSON.stringify([1, 'warm', null, null, null]), JSON.stringify([1, 'once', null, null, null])],
      `stored once (the caller was told ${outcome})`)
  })

  t.test('2. an ioredis client with keyPrefix: live delivery works, under the prefixed names', async t => {
    const prefix = uniquePrefix(t, REDIS_URL)
    const keyPrefix = prefix + 'kp:'
    const client = new Redis(REDIS_URL, { keyPrefix })
    t.teardown(() => client.disconnect())
    const admin = testClient(t)
    const { app } = await buildApp(t, { redis: client })
    const channel = app.sse.channel('news')
    const reader = read(channel.subscribe())
    const id = await channel.publish('hello')
    t.same((await reader.take(1)).map(message => message.id), [id])
    t.equal(await admin.xlen(keyPrefix + streamOf('sse:', 'news')), 1, 'the stream is under the client\'s keyPrefix')
    const [, count] = await admin.pubsub('NUMSUB', announcementOf('sse:', 'news', { keyPrefix })) as [string, number]
    t.equal(count, 1, 'and so is the pub/sub channel')
    const replayed = await read(channel.subscribe({ lastEventId: '0-1' })).take(2)
    t.same(replayed.map(message => [message.event, message.id]), [[GAP_EVENT, '0-1'], [undefined, id]],
      'a replay reads the prefixed stream')
  })

  t.test('3. apps on two databases of one Redis never hear each other, even with the same prefix', async t => {
    const prefix = uniquePrefix(t)
    const staging = await buildApp(t, { redis: REDIS_URL.replace(/\/?$/, '/15'), redisPrefix: prefix })
    const production = await buildApp(t, { redis: REDIS_URL.replace(/\/?$/, '/14'), redisPrefix: prefix })
    t.teardown(async () => {
      for (const db of [14, 15]) {
        const admin = new Redis(REDIS_URL, { db })
        await admin.del(streamOf(prefix, 'news'))
        admin.disconnect()
      }
    })
    const onProduction = read(production.app.sse.channel('news').subscribe())
    const onStaging = read(staging.app.sse.channel('news').subscribe())
    await staging.app.sse.channel('news').publish('staging only')
    const id = await production.app.sse.channel('news').publish('production only')
    t.same((await onProduction.take(1)).map(message => [message.id, message.data]), [[id, 'production only']])
    t.same((await onStaging.take(1)).map(message => message.data), ['staging only'])
  })

  t.test('4. a subscriber connection dropped before its channel delivered anything loses nothing published meanwhile', async t => {
    const prefix = uniquePrefix(t)
    const admin = testClient(t)
    const { app: publisher } = await buildApp(t, { redis: REDIS_URL, redisPrefix: prefix })
    const { app, logs } = await buildApp(t, { redis: REDIS_URL, redisPrefix: prefix })
    const reader = read(app.sse.channel('news').subscribe())
    await until(async () => (await admin.pubsub('NUMSUB', announcementOf(prefix, 'news')) as [string, number])[1] === 1, 5000)
    const [subscriber] = (await pluginConnectionsOf(admin, prefix)).filter(connection => connection.sub !== '0')
    await admin.client('KILL', 'ID', subscriber!.id!)
    const ids = await publishMany(publisher.sse.channel('news'), 3)
    const received = await reader.take(3)
    t.same(received.map(message => message.id), ids, 'every event, no gap notice')
    await until(() => logsOf(logs, 'sse Redis connection is back; catching up').length === 1, 5000, 'the connection to be back')
  })

  t.test('4b. a subscriber that comes while its app cannot reach Redis gets what other apps publish meanwhile', async t => {
    const prefix = uniquePrefix(t)
    const admin = testClient(t)
    // The app's command connection comes back 800 ms after it is cut; its subscriber connection at once.
    const name = `sse-test-command-${randomUUID()}`
    const command = new Redis(REDIS_URL, {
      connectionName: name,
      retryStrategy (this: { connectionName?: string }) { return this.connectionName === name ? 800 : 20 }
    })
    command.on('error', () => {})
    t.teardown(() => command.disconnect())
    await until(() => command.status === 'ready', 5000)
    const { app: publisher } = await buildApp(t, { redis: REDIS_URL, redisPrefix: prefix })
    const { app } = await buildApp(t, { redis: command, redisPrefix: prefix })
    await publishMany(publisher.sse.channel('news'), 2)
    await sleep(50)
    await admin.client('KILL', 'SKIPME', 'yes', 'TYPE', 'normal', 'LADDR', await localAddressOf(admin, name))
    await until(() => command.status !== 'ready', 2000, 'the command connection to drop')
    const reader = read(app.sse.channel('news').subscribe())
    await sleep(100)
    const ids = await publishMany(publisher.sse.channel('news'), 3)
    const received = await reader.take(3, 10_000)
    t.same(received.map(message => message.id), ids, 'every event published after it subscribed, and only those')
  })

  t.test('4c. a feed whose position Redis does not answer in time (paused past 10 s) asks again, then delivers', async t => {
    t.setTimeout(40_000)
    const redis = await ownRedis(t)
    const admin = testClient(t, redis.url)
    const { app } = await buildApp(t, { redis: redis.url })
    const channel = app.sse.channel('news')
    await channel.publish('before')
    await sleep(50)
    // Scripts wait; SUBSCRIBE does not: the feed is subscribed, its position unknown.
    await admin.client('PAUSE', 11_000, 'WRITE')
    const reader = read(channel.subscribe())
    await sleep(11_500)
    const ids = await publishMany(channel, 3)
    const received = await reader.take(3, 10_000)
    t.same(received.map(message => message.id), ids)
  })

  t.test('4d. after a restart without data and then a dropped subscriber connection, nothing is lost a second time', async t => {
    const redis = await ownRedis(t)
    const admin = () => testClient(t, redis.url)
    const { app: publisher, logs } = await buildApp(t, { redis: redis.url })
    const { app } = await buildApp(t, { redis: redis.url })
    const reader = read(app.sse.channel('news').subscribe())
    const [e1] = await publishMany(publisher.sse.channel('news'), 1)
    t.same((await reader.take(1)).map(message => message.id), [e1])
    await redis.kill()
    await redis.start()
    await until(() => logsOf(logs, 'sse Redis connection is back; catching up').length === 1, 10_000, 'the publisher to be back')
    const [gap] = await reader.take(1, 10_000)
    t.match(gap, { event: GAP_EVENT, id: e1 }, 'the history is gone: one notice')
    await admin().client('KILL', 'TYPE', 'pubsub')
    let ids: string[] = []
    await until(async () => {
      try { ids = await publishMany(publisher.sse.channel('news'), 2); return true } catch { return false }
    }, 5000, 'a publish to be taken')
    const received = await reader.take(2, 10_000)
    t.same(received.map(message => message.id), ids, 'the events published while its connection was down, no second notice')
  })

  t.test('5. clients that come and go during an outage queue nothing: one SUBSCRIBE once Redis is back', async t => {
    const redis = await ownRedis(t)
    const { app, logs } = await buildApp(t, { redis: redis.url })
    const channel = app.sse.channel('news')
    const staying = read(channel.subscribe())
    await channel.publish('before')
    await staying.take(1)
    await redis.kill()
    await until(() => logsOf(logs, 'sse lost its Redis connection; reconnecting (publish and replay fail meanwhile)').length === 1, 5000)
    for (let i = 0; i < 500; i++) {
      const churn = app.sse.channel(i % 2 === 0 ? 'news' : `other-${i}`).subscribe()[Symbol.asyncIterator]()
      await churn.return!()
    }
    await redis.start()
    await until(() => logsOf(logs, 'sse Redis connection is back; catching up').length === 1, 10_000, 'the connection to be back')
    const admin = testClient(t, redis.url)
    await sleep(200)
    t.equal(await callsOf(admin, 'subscribe'), 1, 'one SUBSCRIBE, for the channels watched now')
    t.equal(await callsOf(admin, 'unsubscribe'), 0, 'nothing replayed for the clients that left')
    const id = await channel.publish('after')
    const [gap, after] = await staying.take(2)
    t.equal(gap!.event, GAP_EVENT, 'Redis lost its data: the history is gone')
    t.equal(after!.id, id)
  })

  t.test('7. Redis keys expire: a stream redisHistoryTtl after its last publish, an idempotency key after its window', async t => {
    const prefix = uniquePrefix(t)
    const admin = testClient(t)
    const { app } = await buildApp(t, { redis: REDIS_URL, redisPrefix: prefix, redisHistoryTtl: 60_000, idempotencyWindow: 30_000 })
    await app.sse.channel('news').publish('a', { idempotencyKey: 'k' })
    const ttl = await admin.pttl(streamOf(prefix, 'news'))
    t.ok(ttl > 55_000 && ttl <= 60_000, `the stream expires in ${ttl} ms`)
    const keyTtl = await admin.pttl(streamOf(prefix, 'news') + ':idempotency:k')
    t.ok(keyTtl > 25_000 && keyTtl <= 30_000, `the key expires in ${keyTtl} ms`)
    await admin.pexpire(streamOf(prefix, 'news'), 1000)
    await app.sse.channel('news').publish('b')
    t.ok(await admin.pttl(streamOf(prefix, 'news')) > 55_000, 'every publish refreshes it')
    const { app: forever } = await buildApp(t, { redis: REDIS_URL, redisPrefix: prefix + 'forever:', redisHistoryTtl: 0 })
    await forever.sse.channel('news').publish('kept')
    t.equal(await admin.pttl(streamOf(prefix + 'forever:', 'news')), -1, 'redisHistoryTtl 0: never expires')
  })

  t.test('9. a garbage Last-Event-ID costs no replay; a reconnect storm asking the same id asks Redis once', async t => {
    const redis = await ownRedis(t)
    const admin = testClient(t, redis.url)
    const { app } = await buildApp(t, { redis: redis.url })
    const channel = app.sse.channel('news')
    const ids = await publishMany(channel, 200)
    read(channel.subscribe())
    await until(async () => (await admin.pubsub('NUMSUB', announcementOf('sse:', 'news')) as [string, number])[1] === 1, 5000)
    await sleep(100)
    const before = await callsOf(admin, 'evalsha')
    const garbage = await Promise.all(['garbage', '1-1-1', 'x'.repeat(300)].map(lastEventId => read(channel.subscribe({ lastEventId })).take(1)))
    t.ok(garbage.every(([gap]) => gap!.event === GAP_EVENT), 'each gets the gap notice')
    t.equal(await callsOf(admin, 'evalsha'), before, 'and Redis is not asked anything')
    const storm = await Promise.all(Array.from({ length: 100 }, () => read(channel.subscribe({ lastEventId: ids[0] })).take(199)))
    t.ok(storm.every(replayed => replayed.length === 199 && replayed[198]!.id === ids[199]), 'every client gets what it missed')
    t.equal(await callsOf(admin, 'evalsha'), before + 1, 'from one replay, shared')
  })

  t.test('10a. a history that went back (Redis lost it, its clock is behind) is delivered after a gap notice, not dropped', async t => {
    const prefix = uniquePrefix(t)
    const admin = testClient(t)
    const { app } = await buildApp(t, { redis: REDIS_URL, redisPrefix: prefix })
    const channel = app.sse.channel('news')
    const reader = read(channel.subscribe())
    const [last] = await publishMany(channel, 1)
    await reader.take(1)
    await admin.del(streamOf(prefix, 'news'))
    const rewound = await admin.xadd(streamOf(prefix, 'news'), '1-1', 'p', '', 'b', textBody('after the failover')) as string
    await admin.publish(announcementOf(prefix, 'news'), `${rewound}  ${textBody('after the failover')}`)
    const [gap, event] = await reader.take(2)
    t.match(gap, { event: GAP_EVENT, id: last })
    t.same([event!.id, event!.data], ['1-1', 'after the failover'])
  })

  t.test('10b. a registration that fails after Redis connected closes the connections it opened', async t => {
    const prefix = uniquePrefix(t)
    const admin = testClient(t)
    const app = Fastify()
    t.teardown(() => app.close())
    await app.register(ssePlugin, { redis: REDIS_URL, redisPrefix: prefix + 'first:' })
    // A second registration on the same instance fails on its decorators, after it connected.
    app.register(ssePlugin, { redis: REDIS_URL, redisPrefix: prefix + 'second:' })
    await t.rejects(async () => { await app.ready() }, { code: 'FST_ERR_DEC_ALREADY_PRESENT' })
    await until(async () => (await pluginConnectionsOf(admin, prefix + 'second:')).length === 0, 3000, 'its connections to close')
    t.equal((await pluginConnectionsOf(admin, prefix + 'second:')).length, 0)
  })

  t.test('10c. entries another writer left in a stream are skipped and logged: replay and catch-up go on', async t => {
    const prefix = uniquePrefix(t)
    const admin = testClient(t)
    const { app, logs } = await buildApp(t, { redis: REDIS_URL, redisPrefix: prefix })
    const channel = app.sse.channel('news')
    const first = await channel.publish('first')
    await admin.xadd(streamOf(prefix, 'news'), '*', 'foreign', 'entry')
    await admin.xadd(streamOf(prefix, 'news'), '*', 'p', '', 'b', 'not json')
    await admin.xadd(streamOf(prefix, 'news'), '*', 'p', '', 'b', JSON.stringify([1, 'spoof', GAP_EVENT, 86_400_000, null]))
    const second = await channel.publish('second')
    const [gap, ...replayed] = await read(channel.subscribe({ lastEventId: first })).take(3)
    t.equal(gap!.event, GAP_EVENT, 'the chain of ids is broken by what the plugin did not write: all that is kept follows')
    t.same(replayed.map(message => [message.id, message.data]), [[first, 'first'], [second, 'second']])
    t.match(logsOf(logs, 'sse channel skipped Redis entries it cannot read in a replay'), [{ level: 40, unread: 3 }])
  })
}
