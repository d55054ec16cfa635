import t from 'tap'
import { gapMessage, GAP_EVENT, Subscription, type SubscriptionOwner } from '../../lib/channels/subscription.js'
import type { Replay } from '../../lib/channels/backend.js'
import type { ChannelMessage } from '../../lib/index.js'
import { kAdopt, kResume, type StreamSink } from '../../lib/adoption.js'
import { deferred } from '../fixtures/wait.js'

/** An owner that records what the subscription tells it. */
function owner (): SubscriptionOwner & { released: Subscription[], slow: Subscription[], gaps: number } {
  const released: Subscription[] = []
  const slow: Subscription[] = []
  return {
    released,
    slow,
    gaps: 0,
    size: 1,
    release (s) { released.push(s) },
    tooSlow (s) { slow.push(s) },
    gapHandedOut () { this.gaps++ }
  }
}

const message = (id: string): ChannelMessage => Object.freeze({ id, data: id })
const DONE = { value: undefined, done: true }

t.test('is its own async iterator and yields pushed messages in order', async t => {
  const sub = new Subscription(owner(), 10, undefined)
  t.equal(sub[Symbol.asyncIterator](), sub)
  const waiting = sub.next()
  sub.push(message('1-1'))
  sub.push(message('1-2'))
  sub.push(message('1-3'))
  t.same(await waiting, { value: message('1-1'), done: false }, 'a waiting pull gets the next push')
  t.same((await sub.next()).value, message('1-2'))
  t.same((await sub.next()).value, message('1-3'))
})

t.test('more than maxQueue waiting messages end it once, reported to the owner; later pushes are ignored', async t => {
  const o = owner()
  const sub = new Subscription(o, 3, undefined)
  for (let i = 1; i <= 4; i++) sub.push(message(`1-${i}`))
  t.equal(o.slow.length, 1)
  t.equal(sub.ended, true)
  sub.push(message('1-5'))
  t.equal(o.slow.length, 1, 'reported once')
  t.same(await sub.next(), DONE, 'what waited is dropped')
  t.same(o.released, [], 'tooSlow, not release')
})

t.test('a replay comes first; live messages it already holds, or that repeat it later, are dropped', async t => {
  const sub = new Subscription(owner(), 10, undefined)
  const replay = deferred<Replay>()
  sub.replayFrom(() => replay.promise, '1-1')
  sub.push(message('1-3'))
  sub.push(message('1-4'))
  const waiting = sub.next()
  replay.resolve({ gap: false, messages: [message('1-2'), message('1-3')] })
  t.same((await waiting).value, message('1-2'), 'a pull waiting through the replay gets its first message')
  t.same((await sub.next()).value, message('1-3'))
  t.same((await sub.next()).value, message('1-4'), 'then the live one after it, once')
})

t.test('live messages that arrive after the replay are checked against its last id until one passes it', async t => {
  const sub = new Subscription(owner(), 10, undefined)
  sub.replayFrom(() => Promise.resolve({ gap: false, messages: [message('1-2'), message('1-3')] }), '1-1')
  await null
  sub.push(message('1-3'))
  sub.push(message('1-4'))
  sub.push(message('1-5'))
  const ids = []
  for (let i = 0; i < 3; i++) ids.push((await sub.next()).value!.id)
  t.same(ids, ['1-2', '1-3', '1-4'])
  t.same((await sub.next()).value!.id, '1-5')
})

t.test('a replay with nothing after the id drops live messages up to the id', async t => {
  const sub = new Subscription(owner(), 10, undefined)
  sub.replayFrom(() => Promise.resolve({ gap: false, messages: [] }), '1-3')
  sub.push(message('1-3'))
  await null
  sub.push(message('1-3'))
  sub.push(message('1-4'))
  t.same((await sub.next()).value!.id, '1-4')
})

t.test(`a gap replays a "${GAP_EVENT}" notice first, with the subscriber's id; live messages are then all kept`, async t => {
  const sub = new Subscription(owner(), 10, undefined)
  sub.push(message('2-1'))
  sub.replayFrom(() => Promise.resolve({ gap: true, messages: [] }), 'old')
  sub.push(message('2-2'))
  const gap = (await sub.next()).value!
  t.match(gap, { id: 'old', event: GAP_EVENT })
  t.same(JSON.parse(gap.data as string), { lastEventId: 'old' })
  t.same((await sub.next()).value!.id, '2-1')
  t.same((await sub.next()).value!.id, '2-2')
})

t.test('a gap notice goes out only right after the id it names, or first: the feed\'s reaches every subscriber', async t => {
  const o = owner()
  const sub = new Subscription(o, 10, undefined)
  sub.pushGap(gapMessage('1-1'))
  t.match((await sub.next()).value, { event: GAP_EVENT, id: '1-1' }, 'a subscriber with nothing yet takes it')
  sub.pushGap(gapMessage('1-1'))
  sub.push(message('2-1'))
  t.equal((await sub.next()).value!.id, '2-1', 'the same notice again adds nothing')
  sub.pushGap(gapMessage('1-1'))
  sub.pushGap(gapMessage('2-1'))
  t.match((await sub.next()).value, { event: GAP_EVENT, id: '2-1' }, 'one for another id would move its Last-Event-ID: dropped')
  t.equal(o.gaps, 2, 'the owner counts the notices handed out, not the ones dropped')
})

t.test('a gap notice that waited for a replay goes out after it only if it names the replay\'s last id', async t => {
  const filled = new Subscription(owner(), 10, undefined)
  const replay = deferred<Replay>()
  filled.replayFrom(() => replay.promise, '1-1')
  filled.pushGap(gapMessage('1-1'))
  replay.resolve({ gap: false, messages: [message('1-2')] })
  t.equal((await filled.next()).value!.id, '1-2')
  filled.push(message('1-3'))
  t.equal((await filled.next()).value!.id, '1-3', 'the replay had what the feed lost after 1-1: no notice')

  const lost = new Subscription(owner(), 10, undefined)
  const lostReplay = deferred<Replay>()
  lost.replayFrom(() => lostReplay.promise, '1-1')
  lost.push(message('1-2'))
  lost.pushGap(gapMessage('1-2'))
  lostReplay.resolve({ gap: false, messages: [message('1-2')] })
  t.equal((await lost.next()).value!.id, '1-2')
  t.match((await lost.next()).value, { event: GAP_EVENT, id: '1-2' }, 'never dropped as already replayed')
})

t.test('after a replay\'s own gap notice, the feed\'s notice for an id the subscriber does not have is dropped', async t => {
  const sub = new Subscription(owner(), 10, undefined)
  sub.replayFrom(() => Promise.resolve({ gap: true, messages: [] }), '1-1')
  t.match((await sub.next()).value, { event: GAP_EVENT, id: '1-1' })
  const waiting = sub.next()
  sub.pushGap(gapMessage('1-5'))
  sub.push(message('2-1'))
  t.equal((await waiting).value!.id, '2-1', 'a waiting pull gets the next event')
})

t.test('a gap notice that waits with the replay does not let a later repeat of a replayed event through', async t => {
  // Through Redis an announcement can trail the stream the replay read, and a gap notice can come first.
  const sub = new Subscription(owner(), 10, undefined)
  sub.replayFrom(() => Promise.resolve({ gap: true, messages: [message('1-1')] }), 'unknown')
  sub.pushGap(gapMessage('0-0'))
  await null
  sub.push(message('1-1'))
  sub.push(message('1-2'))
  const ids = []
  for (let i = 0; i < 3; i++) ids.push((await sub.next()).value!.id)
  t.same(ids, ['unknown', '1-1', '1-2'], 'each event once; the notice naming 0-0, which it never had, is not handed out')
})

t.test('a replay that fails ends it: the next pull throws once, then it is done; the owner is told', async t => {
  const o = owner()
  const sub = new Subscription(o, 10, undefined)
  const failure = new Error('no backend')
  sub.replayFrom(() => Promise.reject(failure), '1-1')
  await new Promise(resolve => setImmediate(resolve))
  await t.rejects(sub.next(), failure)
  t.same(await sub.next(), DONE)
  t.same(o.released, [sub])
})

t.test('a replay that fails while a pull waits rejects that pull', async t => {
  const sub = new Subscription(owner(), 10, undefined)
  const replay = deferred<Replay>()
  sub.replayFrom(() => replay.promise.then(() => { throw new Error('lost') }), '1-1')
  const waiting = sub.next()
  replay.resolve({ gap: false, messages: [] })
  await t.rejects(waiting, { message: 'lost' })
})

t.test('a replay that settles (or fails) after the end is ignored', async t => {
  const o = owner()
  const sub = new Subscription(o, 10, undefined)
  const failing = new Subscription(o, 10, undefined)
  const replay = deferred<Replay>()
  const failed = deferred<Replay>()
  sub.replayFrom(() => replay.promise, '1-1')
  failing.replayFrom(() => failed.promise.then(() => { throw new Error('late') }), '1-1')
  const waiting = [sub.next(), failing.next()]
  await sub.return()
  await failing.return()
  t.same(await Promise.all(waiting), [DONE, DONE])
  replay.resolve({ gap: true, messages: [message('1-2')] })
  failed.resolve({ gap: false, messages: [] })
  await new Promise(resolve => setImmediate(resolve))
  t.same(await sub.next(), DONE)
  t.same(o.released, [sub, failing], 'each released once')
})

t.test('the replay is read when a consumer comes, or once the subscriber\'s code ran on; never for one ended first', async t => {
  let reads = 0
  const read = (): Promise<Replay> => { reads++; return Promise.resolve({ gap: false, messages: [message('1-2')] }) }
  const unread = new Subscription(owner(), 10, undefined)
  unread.replayFrom(read, '1-1')
  await unread.return()
  await Promise.resolve()
  t.equal(reads, 0, 'ended in the same turn (a refused stream): never read')
  const pulled = new Subscription(owner(), 10, undefined)
  pulled.replayFrom(read, '1-1')
  t.equal(reads, 0, 'not while the subscriber\'s code still runs')
  t.equal((await pulled.next()).value!.id, '1-2')
  t.equal(reads, 1, 'read once, by the first pull')
  const waiting = new Subscription(owner(), 10, undefined)
  waiting.replayFrom(read, '1-1')
  await Promise.resolve()
  t.equal(reads, 2, 'with no consumer yet, read a microtask later: the history as it was at subscribe')
  const stream = sink()
  waiting[kAdopt](stream)
  await new Promise(resolve => setImmediate(resolve))
  t.same(stream.got, ['1-2'])
  t.equal(reads, 2, 'and not again when a stream adopts it')
})

t.test('return() and an aborted signal end it and tell the owner once; close() ends it quietly', async t => {
  const o = owner()
  const byReturn = new Subscription(o, 10, undefined)
  t.same(await byReturn.return(), DONE)
  t.same(await byReturn.return(), DONE)
  const controller = new AbortController()
  const byAbort = new Subscription(o, 10, controller.signal)
  const waiting = byAbort.next()
  controller.abort()
  t.same(await waiting, DONE)
  const byClose = new Subscription(o, 10, undefined)
  byClose.push(message('1-1'))
  byClose.close()
  t.same(await byClose.next(), DONE)
  t.same(o.released, [byReturn, byAbort])
  const preAborted = new Subscription(o, 10, AbortSignal.abort())
  t.equal(preAborted.ended, true, 'a signal aborted already ends it at once')
})

t.test('ending it removes its abort listener', async t => {
  const controller = new AbortController()
  const sub = new Subscription(owner(), 10, controller.signal)
  let handled = 0
  const original = sub.handleEvent.bind(sub)
  sub.handleEvent = () => { handled++; original() }
  await sub.return()
  controller.abort()
  t.equal(handled, 0)
})

/** A stream as the subscription sees it once adopted: takes `room` values, then says it is full. */
function sink (room = Infinity): StreamSink & { got: string[], finished: unknown[], room: number } {
  return {
    got: [],
    finished: [],
    room,
    deliver (value) { this.got.push((value as ChannelMessage).id); return this.got.length < this.room },
    finish (error) { this.finished.push(error ?? 'done') },
    tooSlow () { this.finished.push('too-slow') }
  }
}

t.test('adopted by a stream: what waits is delivered at once, then every push as it comes, with no pull', async t => {
  const sub = new Subscription(owner(), 10, undefined)
  sub.push(message('1-1'))
  const stream = sink()
  sub[kAdopt](stream)
  t.same(stream.got, ['1-1'], 'the queue is poured in on adoption')
  sub.push(message('1-2'))
  t.same(stream.got, ['1-1', '1-2'], 'a live event is delivered synchronously')
})

t.test('adopted: a gap notice is delivered only right after the id it names', async t => {
  const sub = new Subscription(owner(), 10, undefined)
  const stream = sink()
  sub[kAdopt](stream)
  sub.push(message('1-1'))
  sub.pushGap(gapMessage('1-0'))
  sub.pushGap(gapMessage('1-1'))
  t.same(stream.got, ['1-1', '1-1'], 'the notice for 1-1, not the one for 1-0')
})

t.test('adopted: a full stream makes it hold events, in order, until resumed; too many end it as too slow', async t => {
  const o = owner()
  const sub = new Subscription(o, 3, undefined)
  const stream = sink(1)
  sub[kAdopt](stream)
  sub.push(message('1-1'))
  sub.push(message('1-2'))
  sub.push(message('1-3'))
  t.same(stream.got, ['1-1'], 'nothing more while the stream is full')
  stream.room = 2
  sub[kResume]()
  t.same(stream.got, ['1-1', '1-2'], 'resumed, it delivers until the stream is full again')
  stream.room = Infinity
  sub[kResume]()
  t.same(stream.got, ['1-1', '1-2', '1-3'])
  stream.room = 0
  for (let i = 4; i <= 8; i++) sub.push(message(`1-${i}`))
  t.same(o.slow, [sub], 'more than maxQueue held: ended as too slow')
  t.same(stream.finished, ['too-slow'], 'and the stream is told it is over, and why')
})

t.test('adopted: it lets go of the signal and its listener, since the stream ends it with return()', async t => {
  const controller = new AbortController()
  const o = owner()
  const sub = new Subscription(o, 10, controller.signal)
  const stream = sink()
  sub[kAdopt](stream)
  controller.abort()
  t.equal(sub.ended, false, 'the abort no longer reaches it')
  await sub.return()
  t.same(o.released, [sub])
  t.same(stream.finished, [], 'the stream ended it; it is not told back')
})

t.test('adopted: a replay is delivered when it arrives, before the live events that waited for it', async t => {
  const sub = new Subscription(owner(), 10, undefined)
  const replay = deferred<Replay>()
  sub.replayFrom(() => replay.promise, '1-1')
  const stream = sink()
  sub[kAdopt](stream)
  sub.push(message('1-4'))
  t.same(stream.got, [], 'live events wait for the replay')
  replay.resolve({ gap: false, messages: [message('1-2'), message('1-3')] })
  await replay.promise
  await new Promise(resolve => setImmediate(resolve))
  t.same(stream.got, ['1-2', '1-3', '1-4'])
})

t.test('adopted after it ended: the stream is told at once, with the failure if there was one', async t => {
  const closed = new Subscription(owner(), 10, undefined)
  closed.close()
  const first = sink()
  closed[kAdopt](first)
  t.same(first.finished, ['done'])

  const failed = new Subscription(owner(), 10, undefined)
  failed.replayFrom(() => Promise.reject(new Error('no backend')), '1-1')
  const second = sink()
  failed[kAdopt](second)
  await new Promise(resolve => setImmediate(resolve))
  t.match(second.finished, [{ message: 'no backend' }], 'a replay that fails, read on adoption, ends it with the failure')

  const failing = new Subscription(owner(), 10, undefined)
  const third = sink()
  failing[kAdopt](third)
  failing.replayFrom(() => Promise.reject(new Error('lost later')), '1-1')
  await new Promise(resolve => setImmediate(resolve))
  t.match(third.finished, [{ message: 'lost later' }], 'a failure after adoption is passed on too')
})
