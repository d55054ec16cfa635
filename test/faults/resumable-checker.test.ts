import t from 'tap'
import { GAP_EVENT, type Received } from './checker.js'
import { END_EVENT, type ReaderRecord } from './generations.js'
import { checkGenerations, type GenerationRecord } from './resumable-checker.js'

// The checker of resumable streams under faults, shown each thing it must catch and what it must let
// pass, on records written by hand.

const rules = { boundMs: 1000, reasons: ['done', 'error', 'server-closing', 'lost'] }
const phases = [{ at: 0, name: 'flowing' }, { at: 300, name: 'paused' }]

const token = (n: number, id = `100-${n}`): Received => ({ id, event: 'token', data: JSON.stringify({ n }), at: 200 })
const end = (reason: string, id = 'end'): Received => ({ id, event: END_EVENT, data: JSON.stringify({ reason }), at: 200 })
const reader = (received: Received[], overrides: Partial<ReaderRecord> = {}): ReaderRecord => {
  const last = received.at(-1)
  const ended = last?.event === END_EVENT ? { reason: (JSON.parse(last.data) as { reason: string }).reason, id: last.id, at: 400 } : undefined
  return { name: 'r', received, end: ended, statusAfterEnd: 204, stoppedWithoutEnd: false, finishedAt: 500, ...overrides }
}
const generation = (readers: ReaderRecord[], yielded = 3, confirmed = 3): GenerationRecord =>
  ({ key: 'g0', startedAt: 0, yielded, confirmed, readers })
const tokens = (...list: number[]): Received[] => list.map(n => token(n))

t.test('every token once, in order, then the end, then 204: nothing to report; the reason is told by phase', async t => {
  const verdict = checkGenerations([generation([reader([...tokens(0, 1, 2, 3), end('done')]), reader([...tokens(0, 1, 2, 3), end('done')])])],
    phases, rules)
  t.same(Object.values(verdict.counts), Object.values(verdict.counts).map(() => 0))
  t.equal(verdict.delivered, 8)
  t.same([...verdict.reasonsByPhase], [['paused', new Map([['done', 1]])]])
})

t.test('a copy, a token out of order, one never yielded, one under two ids, one lost', async t => {
  const verdict = checkGenerations([generation([
    reader([...tokens(0, 1, 1, 3, 2), token(4), end('error')]),
    reader([token(0, 'other'), ...tokens(1, 2, 3), end('error')])
  ])], phases, rules)
  t.equal(verdict.counts.duplicates, 1)
  t.equal(verdict.counts.outOfOrder, 1)
  t.equal(verdict.counts.unknownTokens, 1, 'token 4 was never yielded')
  t.equal(verdict.counts.copies, 1)
  t.equal(verdict.counts.unexplainedLosses, 1, 'token 2 came too late to count as received')
})

t.test('the token with an unknown outcome: a reader with the end must have it once any reader got it', async t => {
  const unknownKept = checkGenerations([generation([reader([...tokens(0, 1, 2, 3), end('error')]), reader([...tokens(0, 1, 2), end('error')])], 3, 2)],
    phases, rules)
  t.equal(unknownKept.counts.unexplainedLosses, 1)
  const unknownDropped = checkGenerations([generation([reader([...tokens(0, 1, 2), end('error')])], 3, 2)], phases, rules)
  t.equal(unknownDropped.counts.unexplainedLosses, 0, 'nobody got it: it was never stored')
  const gaveUp = checkGenerations([generation([reader([...tokens(0, 1), end('lost', '100-1')])])], phases, rules)
  t.equal(gaveUp.counts.unexplainedLosses, 0, 'a reader that gave up (lost) has what came until then')
})

t.test('no end, an end told by a 204 only, a reason not expected, readers that disagree, a late stop, no 204 after the end', async t => {
  const verdict = checkGenerations([generation([
    reader(tokens(0, 1, 2, 3), { finishedAt: undefined }),
    reader(tokens(0, 1, 2, 3), { stoppedWithoutEnd: true }),
    reader([...tokens(0, 1, 2, 3), end('cancelled')]),
    reader([...tokens(0, 1, 2, 3), end('done')], { finishedAt: 1500, statusAfterEnd: 200 })
  ])], phases, rules)
  t.equal(verdict.counts.noEnd, 2)
  t.match(verdict.examples.noEnd[1], /told to stop \(204\)/)
  t.equal(verdict.counts.badReasons, 1)
  t.equal(verdict.counts.mixedReasons, 1)
  t.equal(verdict.counts.late, 2, 'one never stopped, one stopped past the bound')
  t.equal(verdict.counts.not204, 1)
})

t.test('a gap notice, an event of another name, anything after the end', async t => {
  const verdict = checkGenerations([generation([reader([
    ...tokens(0), { id: '100-0', event: GAP_EVENT, data: '{}', at: 200 }, ...tokens(2, 3),
    { id: '', event: 'message', data: 'x', at: 200 }, end('done'), token(3)
  ])])], phases, rules)
  t.equal(verdict.counts.unexpectedGaps, 1)
  t.equal(verdict.counts.unexplainedLosses, 0, 'what the notice skipped is counted under it')
  t.equal(verdict.counts.unexpectedEvents, 2)
})
