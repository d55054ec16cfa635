import t from 'tap'
import { readLastEventId } from '../../lib/last-event-id.js'

/** The header as Node hands it over: one character per byte of what the client sent. */
const asNodeGivesIt = (text: string): string => Buffer.from(text, 'utf8').toString('latin1')

t.test('an absent header is no id; an ASCII one is itself, empty included', async t => {
  t.same(readLastEventId(undefined, 512), { id: undefined, tooLong: false })
  t.same(readLastEventId('', 512), { id: '', tooLong: false })
  t.same(readLastEventId('1700000000000-3', 512), { id: '1700000000000-3', tooLong: false })
})

t.test('bytes that are UTF-8 are read as UTF-8, as the browser that got the id sends it back', async t => {
  for (const id of ['Zürich-1', '東京-2', 'emoji-😀', 'é']) {
    t.equal(readLastEventId(asNodeGivesIt(id), 512).id, id, id)
  }
})

t.test('bytes that are not UTF-8 stay as latin1, rather than failing', async t => {
  t.equal(readLastEventId('caf\xe9', 512).id, 'caf\xe9')
})

t.test('the cap counts bytes: at the cap the id is kept, one byte over it is absent and says how long it was', async t => {
  t.same(readLastEventId('a'.repeat(16), 16), { id: 'a'.repeat(16), tooLong: false })
  t.same(readLastEventId('a'.repeat(17), 16), { id: undefined, tooLong: true, bytes: 17 })
  // 'é' is two bytes: eight of them are 16 bytes, nine are 18.
  t.equal(readLastEventId(asNodeGivesIt('é'.repeat(8)), 16).id, 'é'.repeat(8))
  t.same(readLastEventId(asNodeGivesIt('é'.repeat(9)), 16), { id: undefined, tooLong: true, bytes: 18 })
})

t.test('a repeated header (an array) is joined as Node joins it', async t => {
  t.equal(readLastEventId(['1', '2'], 512).id, '1, 2')
})
