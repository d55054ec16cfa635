import t from 'tap'
import fc from 'fast-check'
import { decodeCursor, encodeCursor } from '../../lib/channels/cursor.js'
import { validateId } from '../../lib/frame.js'

// lib/channels/cursor.ts: a stream of several channels names where it stands in each with one id.

const id = fc.tuple(fc.integer({ min: 0, max: 2 ** 48 }), fc.integer({ min: 0, max: 2 ** 20 })).map(([a, b]) => `${a}-${b}`)

t.test('every channel\'s position round-trips through one id, whatever the channel names hold', async t => {
  fc.assert(fc.property(fc.uniqueArray(fc.string({ minLength: 1, maxLength: 20, unit: 'binary' }), { minLength: 1, maxLength: 6 }),
    fc.array(id, { minLength: 6, maxLength: 6 }), (names, ids) => {
      const cursor = new Map(names.map((name, i) => [name, ids[i]!]))
      const encoded = encodeCursor(names, cursor)
      validateId(encoded) // never a CR, LF or NUL: always a valid id field
      const decoded = decodeCursor(encoded, names)
      return names.every(name => decoded.get(name) === cursor.get(name)) && decoded.size === names.length
    }), { numRuns: 2000 })
  t.pass('2,000 random sets of names and ids')
})

t.test('channels without a position yet are left out; the order given is kept', async t => {
  const cursor = new Map([['b', '2-0'], ['a', '1-0']])
  t.equal(encodeCursor(['a', 'b', 'c'], cursor), 'a=1-0&b=2-0')
  t.equal(encodeCursor(['c'], cursor), '')
  t.equal(encodeCursor(['a & b'], new Map([['a & b', '3-1']])), 'a%20%26%20b=3-1')
})

t.test('reads what it can of any Last-Event-ID and ignores the rest', async t => {
  t.strictSame(decodeCursor(undefined, ['a']), new Map())
  t.strictSame(decodeCursor('', ['a']), new Map())
  t.strictSame(decodeCursor('a=1-0&gone=2-0', ['a', 'b']), new Map([['a', '1-0']]), 'a channel no longer on the stream')
  t.strictSame(decodeCursor('42', ['a']), new Map(), 'a plain id (from a single-channel stream)')
  t.strictSame(decodeCursor('=1-0&a=&b', ['a', 'b']), new Map(), 'pairs without a name, an id or a =')
  t.strictSame(decodeCursor('%E0%A4%A=1-0&a=5-5', ['a']), new Map([['a', '5-5']]), 'a name that does not decode')
  t.strictSame(decodeCursor('a=junk', ['a']), new Map([['a', 'junk']]), 'an id the channel never gave is the channel\'s to answer (a gap notice)')
})
