import t from 'tap'
import { channelRecords, check, CURSOR_EVENT, GAP_EVENT, type ClientRecord, type Received } from './checker.js'

// The checker of the fault-injection suite is what makes it a proof: here it is shown each thing it
// must catch, and what it must let pass, on records written by hand.

const ids = Array.from({ length: 10 }, (_, seq) => `${1000 + seq}-0`)
const published = { ids, at: ids.map((_, seq) => 100 + seq) }
const phases = [{ at: 0, name: 'flowing' }, { at: 105, name: 'wipe' }]

const tick = (seq: number, id = ids[seq]!, at = 200): Received => ({ id, event: 'tick', data: JSON.stringify({ seq }), at })
const gap = (lastEventId: string, at = 200): Received =>
  ({ id: lastEventId, event: GAP_EVENT, data: JSON.stringify({ lastEventId }), at })
const client = (...received: Received[]): ClientRecord => ({ name: 'c1', received })
const seqs = (...list: number[]): Received[] => list.map(seq => tick(seq))

t.test('every event once and in order, from the first one a client got: nothing to report', async t => {
  const verdict = check(published, [client(...seqs(3, 4, 5, 6, 7, 8, 9))], [], phases)
  t.equal(verdict.published, 10)
  t.equal(verdict.delivered, 7)
  t.same(Object.values(verdict.counts), Object.values(verdict.counts).map(() => 0))
})

t.test('a copy, an event out of order, an id no publish resolved to, a lost event, a client that got nothing', async t => {
  const verdict = check(published, [
    client(...seqs(0, 1, 1, 3, 2, 4, 5, 6, 7, 8), tick(9, '999-0')),
    { name: 'c2', received: [] }
  ], [], phases)
  t.equal(verdict.counts.duplicates, 1)
  t.equal(verdict.counts.outOfOrder, 1)
  t.equal(verdict.counts.unknownIds, 1)
  t.equal(verdict.counts.unexplainedLosses, 1, '#2 came too late to count as received')
  t.equal(verdict.counts.silentClients, 1)
  t.match(verdict.examples.unknownIds[0], /c1 got #9 with id 999-0, but its publish resolved to 1009-0/)
  t.same(verdict.byPhase.duplicates, { flowing: 1 })
})

t.test('a client that does not catch up with the last event has lost the rest', async t => {
  const verdict = check(published, [client(...seqs(0, 1, 2, 3, 4, 5, 6))], [], phases)
  t.equal(verdict.counts.unexplainedLosses, 3)
})

t.test('after a wipe, a gap notice for an id from before it covers the lost events, not the kept ones', async t => {
  const wipe = { at: 150, firstSeq: 6 }
  const covered = check(published, [client(...seqs(0, 1, 2), gap(ids[2]!), ...seqs(6, 7, 8, 9))], [wipe], phases)
  t.equal(covered.gaps, 1)
  t.equal(covered.gapped, 3, '#3, #4 and #5 were lost with the history')
  t.equal(covered.counts.unexpectedGaps, 0)
  t.equal(covered.counts.unexplainedLosses, 0)

  const skipped = check(published, [client(...seqs(0, 1, 2), gap(ids[2]!), ...seqs(7, 8, 9))], [wipe], phases)
  t.equal(skipped.counts.unexplainedLosses, 1, '#6 was kept by the Redis that came back: it must arrive')
})

t.test('a gap notice with no lost history behind it, or naming another id than the client had', async t => {
  const noWipe = check(published, [client(...seqs(0, 1, 2), gap(ids[2]!), ...seqs(5, 6, 7, 8, 9))], [], phases)
  t.equal(noWipe.counts.unexpectedGaps, 1)
  t.equal(noWipe.counts.unexplainedLosses, 0, 'the losses it covers are counted under the notice')
  const early = check(published, [client(...seqs(0, 1, 2), gap(ids[2]!, 120), ...seqs(5, 6, 7, 8, 9))],
    [{ at: 150, firstSeq: 6 }], phases)
  t.equal(early.counts.unexpectedGaps, 1, 'a notice that came before the wipe')
  const afterTheWipe = check(published, [client(...seqs(0, 1, 2, 6, 7), gap(ids[7]!), ...seqs(8, 9))],
    [{ at: 150, firstSeq: 6 }], phases)
  t.equal(afterTheWipe.counts.unexpectedGaps, 1, 'a notice for an id the Redis that came back kept')
  const wrong = check(published, [client(...seqs(0, 1, 2), gap(ids[1]!), ...seqs(6, 7, 8, 9))],
    [{ at: 150, firstSeq: 6 }], phases)
  t.equal(wrong.counts.wrongGapIds, 1)
})

t.test('events under another name are reported', async t => {
  const verdict = check(published, [client(...seqs(0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    { id: '', event: 'message', data: 'hello', at: 200 })], [], phases)
  t.equal(verdict.counts.unexpectedEvents, 1)
})

t.test('a multiplexed client is held to the rules per channel: each channel\'s events by their position in the cursor', async t => {
  const other = ids.map(id => id.replace(/^1/, '2'))
  const cursor = (tickSeq: number | undefined, tockSeq: number | undefined): string =>
    [tickSeq === undefined ? '' : `ticks=${ids[tickSeq]}`, tockSeq === undefined ? '' : `tocks=${other[tockSeq]}`]
      .filter(pair => pair !== '').join('&')
  const mux = (event: string, data: object, id: string): Received => ({ id, event, data: JSON.stringify(data), at: 200 })
  const record: ClientRecord = {
    name: 'm1',
    received: [
      mux('ticks.tick', { seq: 0 }, cursor(0, undefined)),
      mux('tocks.tick', { seq: 0 }, cursor(0, 0)),
      mux('ticks.tick', { seq: 1 }, cursor(1, 0)),
      mux('tocks.tick', { seq: 1 }, cursor(1, 1)),
      mux('tocks.tick', { seq: 1 }, cursor(1, 1)),
      mux('ticks.tick', { seq: 2 }, cursor(2, 1)),
      mux('news', { hello: 1 }, cursor(2, 1))
    ]
  }
  const [ticks, tocks] = channelRecords(record, ['ticks', 'tocks']) as [ClientRecord, ClientRecord]
  t.strictSame(ticks.received.slice(0, 3).map(event => [event.event, event.id]), [['tick', ids[0]], ['tick', ids[1]], ['tick', ids[2]]])
  t.equal(ticks.received.at(-1)?.event, 'news', 'an event of no channel is kept in the first channel\'s record')
  const onTicks = check({ ids: ids.slice(0, 3), at: [100, 101, 102] }, [ticks], [], phases)
  t.equal(onTicks.counts.duplicates, 0, 'the copy on the other channel is not this channel\'s')
  t.equal(onTicks.counts.unexpectedEvents, 1)
  const onTocks = check({ ids: other.slice(0, 2), at: [100, 101] }, [tocks], [], phases)
  t.equal(onTocks.counts.duplicates, 1)
  t.equal(onTocks.counts.unknownIds, 0, 'each id read from the cursor is the one its publish resolved to')

  const gapped = channelRecords({
    name: 'm2',
    received: [
      mux('tocks.tick', { seq: 0 }, cursor(undefined, 0)),
      mux('tocks.' + GAP_EVENT, { lastEventId: other[0] }, cursor(undefined, 0)),
      mux('tocks.tick', { seq: 3 }, cursor(undefined, 3))
    ]
  }, ['tocks'])
  const wiped = check({ ids: other.slice(0, 4), at: [100, 101, 102, 103] }, gapped, [{ at: 150, firstSeq: 3 }], phases)
  t.equal(wiped.gapped, 2, 'the channel\'s own gap notice covers what its history lost')
  t.equal(wiped.counts.wrongGapIds, 0, 'the notice names the channel\'s position, as the cursor does')
  t.equal(wiped.counts.unexplainedLosses, 0)
})

t.test('a multiplexed stream\'s cursor is where each channel starts for the client: every event after it must arrive, the first ones too', async t => {
  const at = (position: string): Received => ({ id: `ticks=${position}`, event: CURSOR_EVENT, data: '', at: 200 })
  const mux = (seq: number): Received => ({ id: `ticks=${ids[seq]!}`, event: 'ticks.tick', data: JSON.stringify({ seq }), at: 200 })
  const verdictOf = (...received: Received[]) => check(published, channelRecords({ name: 'm', received }, ['ticks']), [], phases)
  t.equal(verdictOf(at(ids[2]!), ...[3, 4, 5, 6, 7, 8, 9].map(mux)).counts.unexplainedLosses, 0, 'from just after it: all there')
  const late = verdictOf(at(ids[2]!), ...[5, 6, 7, 8, 9].map(mux))
  t.equal(late.counts.unexplainedLosses, 2, 'what came between the cursor and the first event received is lost (#3, #4)')
  t.equal(verdictOf(at('999-0'), ...[1, 2, 3, 4, 5, 6, 7, 8, 9].map(mux)).counts.unexplainedLosses, 1,
    'a position before the run\'s first event: #0 is owed too')
  t.equal(verdictOf(at(ids[7]!)).counts.unexplainedLosses, 2, 'a client that got nothing after its cursor lost the rest')
  t.equal(verdictOf(at(ids[7]!)).counts.silentClients, 0, 'but is not silent: it was told where it stood')
  t.equal(verdictOf(at('5000-0')).counts.unknownIds, 1, 'a position after every event published is none the channel gave')
  t.equal(verdictOf(at(ids[4]!), ...[3, 5, 6, 7, 8, 9].map(mux)).counts.outOfOrder, 1, 'an event from before the position is out of order')
  const gapAfterCursor = check(published, channelRecords({
    name: 'm',
    received: [at(ids[2]!), { ...mux(0), event: 'ticks.' + GAP_EVENT, id: `ticks=${ids[2]!}`, data: JSON.stringify({ lastEventId: ids[2] }) },
      ...[8, 9].map(mux)]
  }, ['ticks']), [{ at: 150, firstSeq: 8 }], phases)
  t.equal(gapAfterCursor.counts.wrongGapIds, 0, 'a gap notice names the position the cursor gave')
  t.equal(gapAfterCursor.counts.unexplainedLosses, 0, 'and covers what the wipe took')
})
