import t from 'tap'
import { describe } from '../../lib/describe.js'

t.test('strings are quoted, and cut short past 40 characters (or the limit given)', async t => {
  t.equal(describe('a\nb'), '"a\\nb"')
  t.equal(describe('x'.repeat(40)), `"${'x'.repeat(40)}"`)
  t.equal(describe('x'.repeat(15_000)), `"${'x'.repeat(40)}..."`)
  t.equal(describe('x'.repeat(200), 100), `"${'x'.repeat(100)}..."`)
})

t.test('other primitives as written, anything else by its type', async t => {
  t.equal(describe(42), '42')
  t.equal(describe(Number.NaN), 'NaN')
  t.equal(describe(false), 'false')
  t.equal(describe(10n), '10')
  t.equal(describe(null), 'null')
  t.equal(describe(undefined), 'undefined')
  t.equal(describe({ a: 1 }), 'object')
  t.equal(describe([1]), 'object')
  t.equal(describe(() => 1), 'function')
  t.equal(describe(Symbol('s')), 'symbol')
})
