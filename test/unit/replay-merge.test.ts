import t from 'tap'
import fc from 'fast-check'
import { compareIds, type Replay } from '../../lib/channels/backend.js'
import { GAP_EVENT, gapMessage, isGapNotice } from '../../lib/channels/gap.js'
import { mergeReplay } from '../../lib/channels/replay-merge.js'
import type { ChannelMessage } from '../../lib/index.js'

const event = (seq: number): ChannelMessage => Object.freeze({ id: `7-${seq}`, data: seq })
const events = (from: number, to: number): ChannelMessage[] =>
  Array.from({ length: Math.max(0, to - from + 1) }, (_v, i) => event(from + i))
const ids = (messages: readonly ChannelMessage[]): string[] => messages.map(message => message.id)

t.test('the replay comes first; live events it holds too are dropped; the rest follow', async t => {
  const merged = mergeReplay({ gap: false, messages: events(2, 3) }, '7-1', events(3, 4))
  t.same(ids(merged.messages), ['7-2', '7-3', '7-4'])
  t.equal(merged.replayed, 2, 'the first two came from the replay')
  t.equal(merged.floor, null, 'a live event passed the replay: every later one does too')
})

t.test('when no waiting event passes the replay, later ones are checked against its last id', async t => {
  t.same(mergeReplay({ gap: false, messages: events(2, 3) }, '7-1', events(2, 2)),
    { messages: events(2, 3), replayed: 2, floor: '7-3' })
  t.same(mergeReplay({ gap: false, messages: [] }, '7-3', events(2, 3)),
    { messages: [], replayed: 0, floor: '7-3' }, 'nothing after the id: the id itself is the floor')
  t.same(mergeReplay({ gap: false, messages: [] }, '7-3', events(3, 4)),
    { messages: events(4, 4), replayed: 0, floor: null })
})

t.test(`a gap puts a "${GAP_EVENT}" notice with the client's id first`, async t => {
  const merged = mergeReplay({ gap: true, messages: events(5, 6) }, 'unknown', events(6, 7))
  t.match(merged.messages[0], { id: 'unknown', event: GAP_EVENT })
  t.ok(isGapNotice(merged.messages[0]!))
  t.same(ids(merged.messages.slice(1)), ['7-5', '7-6', '7-7'])
  t.equal(merged.replayed, 3, 'the notice counts as replayed')
  const empty = mergeReplay({ gap: true, messages: [] }, 'unknown', events(1, 2))
  t.same(ids(empty.messages), ['unknown', '7-1', '7-2'], 'nothing kept: every waiting event is new')
  t.equal(empty.floor, null)
})

t.test('a waiting gap notice is kept wherever its id falls, and lifts no floor', async t => {
  const notice = gapMessage('7-1')
  const merged = mergeReplay({ gap: false, messages: events(2, 3) }, '7-1', [notice])
  t.same(merged.messages, [...events(2, 3), notice])
  t.equal(merged.floor, '7-3', 'later live events may still repeat the replay')
})

// Properties, over a model of one channel: events 1..published, a history of `capacity` read when
// `readAt` were published, a subscriber whose live feed began after event `subscribedAt` and had
// delivered up to `deliveredAt` when the replay arrived (Redis can be behind or ahead of the read),
// gap notices among the live events, and a client id in the history, before it, or unknown.
const scenario = fc.record({
  published: fc.integer({ min: 0, max: 30 }),
  capacity: fc.integer({ min: 0, max: 12 }),
  readAt: fc.double({ min: 0, max: 1, noNaN: true }),
  subscribedAt: fc.double({ min: 0, max: 1, noNaN: true }),
  deliveredAt: fc.double({ min: 0, max: 1, noNaN: true }),
  resumeFrom: fc.oneof(fc.double({ min: 0, max: 1, noNaN: true }), fc.constant('unknown')),
  notices: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 3 })
}).map(s => {
  const at = (fraction: number, max: number, min = 0): number => min + Math.floor(fraction * (max - min + 0.999))
  const readAt = at(s.readAt, s.published)
  const subscribedAt = at(s.subscribedAt, readAt)
  const deliveredAt = at(s.deliveredAt, s.published, subscribedAt)
  const resumeFrom = s.resumeFrom === 'unknown' ? null : at(s.resumeFrom, readAt)
  return { ...s, readAt, subscribedAt, deliveredAt, resumeFrom }
})

type Scenario = typeof scenario extends fc.Arbitrary<infer S> ? S : never

interface Outcome { replay: Replay, lastEventId: string, handedOut: ChannelMessage[], notices: ChannelMessage[] }

/** Run a scenario: the replay as History gives it, the merge, then the later live events through the floor. */
function run (s: Scenario): Outcome {
  const kept = Math.min(s.capacity, s.readAt)
  const first = s.readAt - kept + 1
  const lastEventId = s.resumeFrom === null ? 'unknown' : `7-${s.resumeFrom}`
  const replay: Replay = s.resumeFrom !== null && s.resumeFrom >= first - 1
    ? { gap: false, messages: events(s.resumeFrom + 1, s.readAt) }
    : { gap: true, messages: events(first, s.readAt) }
  const live = events(s.subscribedAt + 1, s.published)
  const notices: ChannelMessage[] = []
  for (const where of s.notices) {
    const notice = gapMessage(`7-${Math.floor(where * s.published)}`)
    notices.push(notice)
    live.splice(Math.floor(where * live.length), 0, notice)
  }
  const split = live.findIndex(message => !isGapNotice(message) && compareIds(message.id, `7-${s.deliveredAt}`) > 0)
  const waiting = split === -1 ? live : live.slice(0, split)
  const later = split === -1 ? [] : live.slice(split)
  const merged = mergeReplay(replay, lastEventId, waiting)
  const handedOut = [...merged.messages]
  let floor = merged.floor
  // What Subscription.push does with the floor.
  for (const message of later) {
    if (isGapNotice(message)) {
      handedOut.push(message)
      continue
    }
    if (floor !== null) {
      if (compareIds(message.id, floor) <= 0) continue
      floor = null
    }
    handedOut.push(message)
  }
  return { replay, lastEventId, handedOut, notices }
}

const seqs = (messages: ChannelMessage[]): number[] =>
  messages.filter(message => !isGapNotice(message)).map(message => Number(message.id.split('-')[1]))

t.test('property: no event is handed out twice, and events come in id order (gap notices aside)', async t => {
  t.doesNotThrow(() => fc.assert(fc.property(scenario, s => {
    const handed = seqs(run(s).handedOut)
    return handed.every((seq, i) => i === 0 || seq > handed[i - 1]!)
  }), { numRuns: 2000 }))
})

t.test('property: nothing is lost: after the id, or from the first kept event after a gap, every event up to the newest', async t => {
  t.doesNotThrow(() => fc.assert(fc.property(scenario, s => {
    const { replay, handedOut } = run(s)
    const expectedFrom = !replay.gap
      ? s.resumeFrom! + 1
      : replay.messages.length > 0 ? Number(replay.messages[0]!.id.split('-')[1]) : s.subscribedAt + 1
    return seqs(handedOut).join() === events(expectedFrom, s.published).map(message => message.data).join()
  }), { numRuns: 2000 }))
})

t.test('property: a gap notice comes first exactly when the replay had a gap, and no waiting or later notice is dropped', async t => {
  t.doesNotThrow(() => fc.assert(fc.property(scenario, s => {
    const { replay, lastEventId, handedOut, notices } = run(s)
    const first = handedOut[0]
    const opensWithNotice = first !== undefined && isGapNotice(first) && first.id === lastEventId && !notices.includes(first)
    return opensWithNotice === replay.gap && notices.every(notice => handedOut.includes(notice))
  }), { numRuns: 2000 }))
})
