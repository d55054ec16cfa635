// The comparison benchmark's arithmetic: percentiles, and the ledger that tells a duplicate from a gap.
import t from 'tap'
import { DeliveryLedger, median, percentile, summarize } from '../../bench/compare/stats.js'

t.test('percentile is the nearest rank of an ascending array', async t => {
  const values = Array.from({ length: 100 }, (_v, i) => i + 1) // 1..100
  t.equal(percentile(values, 0.5), 50)
  t.equal(percentile(values, 0.99), 99)
  t.equal(percentile(values, 1), 100)
  t.equal(percentile(values, 0), 1)
  t.equal(percentile([7], 0.99), 7)
  t.ok(Number.isNaN(percentile([], 0.5)), 'no values: no percentile')
})

t.test('median sorts a copy and leaves its input alone', async t => {
  const values = [5, 1, 3]
  t.equal(median(values), 3)
  t.same(values, [5, 1, 3])
})

t.test('summarize leaves out events never received (NaN)', async t => {
  const latencies = new Float64Array([10, Number.NaN, 30, 20, Number.NaN])
  t.same(summarize(latencies), { p50: 20, p99: 30, max: 30, count: 3 })
})

t.test('the ledger counts a second copy of an event as a duplicate, once per copy', async t => {
  const ledger = new DeliveryLedger(2, 3)
  t.equal(ledger.record(0, 0), true)
  t.equal(ledger.record(0, 0), false)
  t.equal(ledger.record(0, 0), false)
  t.equal(ledger.record(1, 0), true, 'the same event at another client is no duplicate')
  t.equal(ledger.duplicates, 2)
  t.equal(ledger.unique, 2)
})

t.test('the ledger counts the events a client never received as gaps, and the clients that missed any', async t => {
  const ledger = new DeliveryLedger(3, 4)
  for (const seq of [0, 1, 2, 3]) ledger.record(0, seq)
  for (const seq of [0, 2, 3]) ledger.record(1, seq) // missed 1
  ledger.record(2, 3) // missed 0, 1, 2
  t.equal(ledger.complete, false)
  t.equal(ledger.gaps, 4)
  t.equal(ledger.clientsWithGaps, 2)
  t.equal(ledger.duplicates, 0)
})

t.test('the ledger is complete once every client has every event, whatever the order', async t => {
  const ledger = new DeliveryLedger(2, 2)
  ledger.record(1, 1)
  ledger.record(0, 1)
  ledger.record(1, 0)
  t.equal(ledger.complete, false)
  ledger.record(0, 0)
  t.equal(ledger.complete, true)
  t.equal(ledger.gaps, 0)
  t.equal(ledger.clientsWithGaps, 0)
})

t.test('an event number outside the burst is unexpected, neither a delivery nor a duplicate', async t => {
  const ledger = new DeliveryLedger(1, 2)
  t.equal(ledger.record(0, 2), false)
  t.equal(ledger.record(0, -1), false)
  t.equal(ledger.record(0, 0.5), false)
  t.equal(ledger.record(0, Number.NaN), false)
  t.equal(ledger.unexpected, 4)
  t.equal(ledger.duplicates, 0)
  t.equal(ledger.unique, 0)
})
