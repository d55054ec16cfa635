import type { Test } from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import { compareIds } from '../../lib/channels/backend.js'
import { GAP_EVENT, type SsePluginOptions } from '../../lib/index.js'
import { openStream } from '../../lib/testing.js'
import { publishMany, read } from '../fixtures/channels.js'
import { logsOf, type LogLine } from '../fixtures/logs.js'
import { until } from '../fixtures/wait.js'

// The specification every channel backend meets, run once per backend (memory.test.ts, redis.test.ts)
// with a builder that registers the plugin on a new app with that backend. Not a test file itself.

export type Build = (t: Test, options?: SsePluginOptions) => Promise<{ app: FastifyInstance, logs: LogLine[] }>

const TOO_SLOW = 'sse channel subscriber too slow: ended (it can resume from history with its Last-Event-ID)'

export function channelContract (t: Test, build: Build): void {
  t.test('app.sse.channel(name) is the same channel for the same name, another one for another name', async t => {
    const { app } = await build(t)
    const news = app.sse.channel('news')
    t.equal(app.sse.channel('news'), news)
    t.not(app.sse.channel('sport'), news)
    t.equal(news.name, 'news')
    t.equal(news.size, 0)
  })

  t.test('a subscriber receives every event published after it subscribed, in order, with the id publish gave', async t => {
    const { app } = await build(t)
    const channel = app.sse.channel('news')
    const reader = read(channel.subscribe())
    const ids = await publishMany(channel, 20)
    const received = await reader.take(20)
    t.same(received.map(message => message.id), ids)
    t.same(received.map(message => message.data), ids.map((_id, n) => ({ n })))
    t.equal(new Set(ids).size, 20, 'every id is new')
    t.ok(ids.every((id, i) => i === 0 || compareIds(ids[i - 1]!, id) < 0), 'ids grow in publish order')
  })

  t.test('concurrent publishes get ids in call order and arrive in that order', async t => {
    const { app } = await build(t)
    const channel = app.sse.channel('news')
    const reader = read(channel.subscribe())
    const ids = await Promise.all(Array.from({ length: 30 }, (_v, n) => channel.publish({ n })))
    t.ok(ids.every((id, i) => i === 0 || compareIds(ids[i - 1]!, id) < 0), 'ids grow in call order')
    const received = await reader.take(30)
    t.same(received.map(message => message.id), ids)
    t.same(received.map(message => (message.data as { n: number }).n), ids.map((_id, n) => n))
  })

  t.test('every subscriber gets the same frozen message: its data is serialized once per publish', async t => {
    let calls = 0
    const { app } = await build(t, { serialize: value => { calls++; return JSON.stringify(value) } })
    const channel = app.sse.channel('many')
    const readers = Array.from({ length: 50 }, () => read(channel.subscribe()))
    t.equal(channel.size, 50)
    await publishMany(channel, 10)
    const all = await Promise.all(readers.map(reader => reader.take(10)))
    t.equal(calls, 10, 'one serialize call per publish, whatever the number of subscribers')
    t.ok(all.every(messages => messages.every((message, i) => message === all[0]![i])), 'one message object for all')
    t.ok(Object.isFrozen(all[0]![0]))
  })

  t.test('data and every field arrive as published', async t => {
    const { app } = await build(t)
    const channel = app.sse.channel('fields')
    const reader = read(channel.subscribe())
    await channel.publish({ list: [1, 'two', { three: 3 }] })
    await channel.publish('plain text\nover two lines')
    await channel.publish(42)
    await channel.publish(null)
    await channel.publish({ event: 'update', data: { ok: true }, retry: 0, comment: 'note' })
    await channel.publish({ event: 'ping' })
    const [list, text, number, nil, full, ping] = await reader.take(6)
    t.same(list!.data, { list: [1, 'two', { three: 3 }] })
    t.equal(text!.data, 'plain text\nover two lines')
    t.equal(number!.data, 42)
    t.equal(nil!.data, null)
    t.match(full, { event: 'update', data: { ok: true }, retry: 0, comment: 'note' })
    t.equal(ping!.event, 'ping')
    t.notOk('data' in ping!, 'an event without data has none')
  })

  t.test('an id in a published message is replaced by the one the channel gives', async t => {
    const { app } = await build(t)
    const channel = app.sse.channel('ids')
    const reader = read(channel.subscribe())
    const id = await channel.publish({ id: 'mine', data: 'x' })
    t.not(id, 'mine')
    const [message] = await reader.take(1)
    t.equal(message!.id, id)
    t.equal(message!.data, 'x')
  })

  t.test('publish rejects what cannot be an event, and nothing of it is stored', async t => {
    const { app } = await build(t)
    const channel = app.sse.channel('strict')
    const first = await channel.publish('first')
    await t.rejects(channel.publish({ event: 'a\nb', data: 1 }), { code: 'FST_SSE_INVALID_EVENT' })
    await t.rejects(channel.publish({ retry: -1 }), { code: 'FST_SSE_INVALID_RETRY' })
    await t.rejects(channel.publish({ data: 1n }), { code: 'FST_SSE_SERIALIZE' })
    await t.rejects(channel.publish(undefined), { code: 'FST_SSE_SERIALIZE' })
    const second = await channel.publish('second')
    const replayed = await read(channel.subscribe({ lastEventId: first })).take(1)
    t.same(replayed.map(message => [message.id, message.data]), [[second, 'second']], 'no gap, no trace of them')
  })

  t.test('a publish with an idempotencyKey seen within the window stores nothing and resolves to the first id', async t => {
    const { app } = await build(t)
    const channel = app.sse.channel('payments')
    const reader = read(channel.subscribe())
    const first = await channel.publish({ paid: 1 }, { idempotencyKey: 'payment-1' })
    const again = await Promise.all([
      channel.publish({ paid: 1 }, { idempotencyKey: 'payment-1' }),
      channel.publishData({ paid: 1 }, { idempotencyKey: 'payment-1' })
    ])
    t.same(again, [first, first], 'every retry resolves to the first id')
    const other = await channel.publish({ paid: 2 }, { idempotencyKey: 'payment-2' })
    const plain = await channel.publish({ paid: 3 })
    t.not(other, first)
    const received = await reader.take(3)
    t.same(received.map(message => message.data), [{ paid: 1 }, { paid: 2 }, { paid: 3 }], 'delivered once each')
    t.same(received.map(message => message.id), [first, other, plain])
    const replayed = await read(channel.subscribe({ lastEventId: first })).take(2)
    t.same(replayed.map(message => message.id), [other, plain], 'stored once: the history has no copy')
    const keys = app.sse.channel('other-channel')
    t.not(await keys.publish('x', { idempotencyKey: 'payment-1' }), first, 'keys are per channel')
  })

  t.test('an idempotencyKey is remembered for idempotencyWindow ms, then publishes anew', async t => {
    const { app } = await build(t, { idempotencyWindow: 300 })
    const channel = app.sse.channel('window')
    const first = await channel.publish('a', { idempotencyKey: 'k' })
    t.equal(await channel.publish('a', { idempotencyKey: 'k' }), first)
    await new Promise(resolve => setTimeout(resolve, 450))
    const later = await channel.publish('a', { idempotencyKey: 'k' })
    t.not(later, first, 'past the window the key publishes a new event')
    t.ok(compareIds(first, later) < 0)
  })

  t.test('publish refuses an idempotencyKey that is not a short non-empty string, and stores nothing', async t => {
    const { app } = await build(t)
    const channel = app.sse.channel('keys')
    const first = await channel.publish('first')
    for (const idempotencyKey of ['', 'k'.repeat(201), 42, null]) {
      await t.rejects(channel.publish('x', { idempotencyKey } as never), { code: 'FST_SSE_INVALID_IDEMPOTENCY_KEY' })
    }
    const second = await channel.publish('second')
    const replayed = await read(channel.subscribe({ lastEventId: first })).take(1)
    t.same(replayed.map(message => message.id), [second])
  })

  t.test(`the event name "${GAP_EVENT}" is reserved: a published notice is refused, publishData never makes fields`, async t => {
    const { app } = await build(t)
    const channel = app.sse.channel('untrusted')
    const reader = read(channel.subscribe())
    const spoof = { event: GAP_EVENT, retry: 86_400_000, data: { lastEventId: '0-0' } }
    await t.rejects(channel.publish(spoof), { code: 'FST_SSE_RESERVED_EVENT' })
    const id = await channel.publishData(spoof)
    await channel.publishData('text')
    const [asData, text] = await reader.take(2)
    t.equal(asData!.id, id)
    t.same(asData!.data, spoof, 'the whole object is the data')
    t.notOk('event' in asData! || 'retry' in asData!, 'no field came from the data')
    t.equal(text!.data, 'text')
    await t.rejects(channel.publishData(undefined), { code: 'FST_SSE_SERIALIZE' })
  })

  t.test('subscribe({ lastEventId }) replays the events after it, then live ones, each once', async t => {
    const { app } = await build(t)
    const channel = app.sse.channel('replay')
    const ids = await publishMany(channel, 10)
    const reader = read(channel.subscribe({ lastEventId: ids[3] }))
    const replayed = await reader.take(6)
    t.same(replayed.map(message => message.id), ids.slice(4))
    const live = await publishMany(channel, 2, 10)
    t.same((await reader.take(2)).map(message => message.id), live)
  })

  t.test('events published while a replay is read come after it, once', async t => {
    const { app } = await build(t)
    const channel = app.sse.channel('overlap')
    const ids = await publishMany(channel, 5)
    const reader = read(channel.subscribe({ lastEventId: ids[1] }))
    ids.push(...await Promise.all([5, 6, 7].map(n => channel.publish({ n }))))
    const received = await reader.take(6)
    t.same(received.map(message => message.id), ids.slice(2))
    const next = await channel.publish({ n: 8 })
    t.same((await reader.take(1)).map(message => message.id), [next], 'and nothing more than once')
  })

  t.test('position() is where the channel stands: a subscription from it gets every event published since, none before, no gap notice', async t => {
    const { app } = await build(t)
    const channel = app.sse.channel('position')
    const empty = await channel.position()
    t.match(empty, /^\d+-\d+$/, 'a channel without events has a position too (before its first)')
    const before = await publishMany(channel, 2)
    const position = await channel.position()
    t.equal(position, before[1], 'a channel with events: its newest')
    const since = await publishMany(channel, 3, 2)
    const fromEmpty = read(channel.subscribe({ lastEventId: empty }))
    t.same((await fromEmpty.take(5)).map(message => message.id), [...before, ...since], 'from before the first: everything')
    const reader = read(channel.subscribe({ lastEventId: position }))
    t.same((await reader.take(3)).map(message => message.id), since)
    const live = await publishMany(channel, 1, 5)
    t.same((await reader.take(1)).map(message => message.id), live, 'then live')
  })

  t.test('a lastEventId equal to the latest id replays nothing and misses nothing', async t => {
    const { app } = await build(t)
    const channel = app.sse.channel('latest')
    const ids = await publishMany(channel, 3)
    const reader = read(channel.subscribe({ lastEventId: ids[2] }))
    const next = await channel.publish({ n: 3 })
    t.same((await reader.take(1)).map(message => message.id), [next])
  })

  t.test(`a lastEventId older than the history: a "${GAP_EVENT}" event, then every kept event`, async t => {
    const { app } = await build(t, { history: 3 })
    const channel = app.sse.channel('old')
    const ids = await publishMany(channel, 10)
    const [gap, ...kept] = await read(channel.subscribe({ lastEventId: ids[2] })).take(4)
    t.match(gap, { id: ids[2], event: GAP_EVENT })
    t.same(JSON.parse(gap!.data as string), { lastEventId: ids[2] })
    t.same(kept.map(message => message.id), ids.slice(7))
  })

  t.test(`an unknown lastEventId: a "${GAP_EVENT}" event, then every kept event`, async t => {
    const { app } = await build(t, { history: 2 })
    const channel = app.sse.channel('unknown')
    const ids = await publishMany(channel, 4)
    for (const lastEventId of ['1-1', '99999999999999-0']) {
      const [gap, ...kept] = await read(channel.subscribe({ lastEventId })).take(3)
      t.match(gap, { id: lastEventId, event: GAP_EVENT }, lastEventId)
      t.same(kept.map(message => message.id), ids.slice(2))
    }
  })

  t.test(`a lastEventId no channel could have given: a "${GAP_EVENT}" event, then live events, nothing replayed`, async t => {
    const { app } = await build(t, { history: 50 })
    const channel = app.sse.channel('garbage')
    await publishMany(channel, 20)
    for (const lastEventId of ['not-an-id', '1-1-1', '12', '1234567890123456-0', 'x'.repeat(300)]) {
      const reader = read(channel.subscribe({ lastEventId }))
      const [gap] = await reader.take(1)
      t.match(gap, { id: lastEventId, event: GAP_EVENT }, lastEventId)
      const live = await channel.publish({ live: lastEventId })
      t.same((await reader.take(1)).map(message => message.id), [live], 'the next one is live: no history replayed')
      await reader.iterator.return!()
    }
  })

  t.test('an unknown lastEventId on a channel without events: a gap event, then live ones', async t => {
    const { app } = await build(t)
    const channel = app.sse.channel('empty')
    const reader = read(channel.subscribe({ lastEventId: '5-5' }))
    const [gap] = await reader.take(1)
    t.equal(gap!.event, GAP_EVENT)
    const id = await channel.publish('after')
    t.same((await reader.take(1)).map(message => message.id), [id])
  })

  t.test('with history 0 nothing is replayed: resuming from the latest id misses nothing, from an older one is a gap', async t => {
    const { app } = await build(t, { history: 0 })
    const channel = app.sse.channel('none')
    const ids = await publishMany(channel, 3)
    const latest = read(channel.subscribe({ lastEventId: ids[2] }))
    const older = read(channel.subscribe({ lastEventId: ids[1] }))
    const [gap] = await older.take(1)
    t.match(gap, { id: ids[1], event: GAP_EVENT })
    const next = await channel.publish({ n: 3 })
    t.same((await latest.take(1)).map(message => message.id), [next])
    t.same((await older.take(1)).map(message => message.id), [next])
  })

  t.test('a subscriber that does not keep up is ended past maxSubscriberQueue, logged once; the others get everything; it resumes from history', async t => {
    const { app, logs } = await build(t, { maxSubscriberQueue: 5 })
    const channel = app.sse.channel('slow')
    const slow = read(channel.subscribe())
    const fast = read(channel.subscribe())
    const ids = await publishMany(channel, 2)
    const seen = await slow.take(2)
    const fastSeen = await fast.take(2)
    // The slow subscriber stops pulling; the fast one keeps up.
    for (let n = 2; n < 20; n++) {
      ids.push(await channel.publish({ n }))
      fastSeen.push(...await fast.take(1))
    }
    await until(() => logsOf(logs, TOO_SLOW).length > 0, 5000, 'the slow subscriber to be ended')
    t.same(fastSeen.map(message => message.id), ids, 'the others get every event')
    t.same(await slow.iterator.next(), { value: undefined, done: true }, 'the slow one is ended')
    t.equal(channel.size, 1)
    const [line, ...more] = logsOf(logs, TOO_SLOW)
    t.match(line, { level: 40, channel: 'slow', maxSubscriberQueue: 5 })
    t.equal(more.length, 0, 'logged once')
    const resumed = await read(channel.subscribe({ lastEventId: seen[1]!.id })).take(18)
    t.same(resumed.map(message => message.id), ids.slice(2), 'nothing is lost while the history covers it')
  })

  t.test('aborting the signal ends the subscription: a waiting pull resolves done and size drops', async t => {
    const { app } = await build(t)
    const channel = app.sse.channel('abort')
    const controller = new AbortController()
    const { iterator } = read(channel.subscribe({ signal: controller.signal }))
    const pending = iterator.next()
    t.equal(channel.size, 1)
    controller.abort()
    t.same(await pending, { value: undefined, done: true })
    t.equal(channel.size, 0)
    t.same(await iterator.next(), { value: undefined, done: true })
  })

  t.test('an already aborted signal gives an ended subscription that is never counted', async t => {
    const { app } = await build(t)
    const channel = app.sse.channel('aborted')
    const { iterator } = read(channel.subscribe({ signal: AbortSignal.abort() }))
    t.equal(channel.size, 0)
    t.same(await iterator.next(), { value: undefined, done: true })
  })

  t.test('return() ends a subscription; size counts the ones still open; a channel of its own per name', async t => {
    const { app } = await build(t)
    const channel = app.sse.channel('count')
    const other = read(app.sse.channel('other').subscribe())
    const a = read(channel.subscribe())
    const b = read(channel.subscribe())
    t.equal(channel.size, 2)
    const pending = b.iterator.next()
    t.same(await b.iterator.return!(), { value: undefined, done: true })
    t.same(await pending, { value: undefined, done: true }, 'a waiting pull resolves done')
    t.equal(channel.size, 1)
    const id = await channel.publish('to a only')
    t.same((await a.take(1)).map(message => message.id), [id])
    const otherId = await app.sse.channel('other').publish('to other only')
    t.same((await other.take(1)).map(message => message.id), [otherId])
  })

  t.test('app.close() ends every subscription; then publish rejects with FST_SSE_CHANNELS_CLOSED', async t => {
    const { app } = await build(t)
    const channel = app.sse.channel('closing')
    const queued = read(channel.subscribe())
    await channel.publish('waiting in a queue')
    const pending = read(channel.subscribe()).iterator.next()
    await app.close()
    t.same(await pending, { value: undefined, done: true })
    t.same(await queued.iterator.next(), { value: undefined, done: true }, 'what waited in a queue is dropped')
    t.equal(channel.size, 0)
    await t.rejects(channel.publish('late'), { code: 'FST_SSE_CHANNELS_CLOSED' })
    await t.rejects(channel.position(), { code: 'FST_SSE_CHANNELS_CLOSED' })
    t.same(await read(channel.subscribe()).iterator.next(), { value: undefined, done: true }, 'a late subscription is over')
  })

  t.test('an idle channel is forgotten; an object kept from before still works and never splits the name\'s subscribers', async t => {
    const { app } = await build(t, { channelIdleTimeout: 100 })
    const old = app.sse.channel('idle')
    await sleep(250)
    const current = app.sse.channel('idle')
    t.not(current, old, 'forgotten: app.sse.channel() makes a new one')
    const viaOld = read(old.subscribe())
    const viaCurrent = read(current.subscribe())
    t.equal(current.size, 2, 'one set of subscribers')
    t.equal(old.size, 2)
    const ids = [await old.publish('from the old object'), await current.publish('from the current one')]
    t.same((await viaOld.take(2)).map(message => message.id), ids)
    t.same((await viaCurrent.take(2)).map(message => message.id), ids)
    t.equal(await old.position(), ids[1], 'its position is the current one\'s')
  })

  t.test('subscribe refuses a lastEventId that would inject a field', async t => {
    const { app } = await build(t)
    t.throws(() => app.sse.channel('x').subscribe({ lastEventId: '1\n2' }), { code: 'FST_SSE_INVALID_ID' })
    t.equal(app.sse.channel('x').size, 0)
  })

  t.test('the one-line route streams a channel to a real client, which resumes with Last-Event-ID', async t => {
    const { app } = await build(t)
    const channel = app.sse.channel('route')
    app.get('/route', (_request, reply) => reply.sse(({ lastEventId, signal }) => channel.subscribe({ lastEventId, signal })))
    const first = await openStream(app, '/route')
    t.equal(channel.size, 1)
    const ids = await publishMany(channel, 3)
    t.same((await first.take(3)).map(event => [event.id, event.data]), ids.map((id, n) => [id, JSON.stringify({ n })]))
    await first.close()
    t.equal(channel.size, 0, 'the subscription ends with the stream')
    const missed = await publishMany(channel, 2, 3)
    const second = await openStream(app, '/route', { lastEventId: first.lastEventId! })
    t.same((await second.take(2)).map(event => event.id), missed)
    await second.close()
  })
}
