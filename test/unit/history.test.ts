import t from 'tap'
import { ID_PATTERN } from '../../lib/channels/backend.js'
import { History } from '../../lib/channels/history.js'
import type { ChannelMessage } from '../../lib/index.js'

function fill (history: History, count: number): string[] {
  const ids: string[] = []
  for (let i = 0; i < count; i++) {
    const id = history.nextId()
    history.push({ id, data: i } as ChannelMessage)
    ids.push(id)
  }
  return ids
}

const idsOf = (messages: readonly ChannelMessage[]): string[] => messages.map(message => message.id)

t.test('ids are <epoch>-<seq> from 1; nextId() does not take one', async t => {
  const history = new History(10)
  const next = history.nextId()
  t.match(next, /^\d+-1$/)
  t.equal(history.nextId(), next)
  const ids = fill(history, 3)
  t.same(ids.map(id => id.split('-')[1]), ['1', '2', '3'])
  t.ok(ids.every(id => id.split('-')[0] === next.split('-')[0]), 'one epoch')
})

t.test('after(id) gives the kept events after it, oldest first, without a gap', async t => {
  const history = new History(10)
  const ids = fill(history, 6)
  t.equal(history.after(ids[2]!).gap, false)
  t.same(idsOf(history.after(ids[2]!).messages), ids.slice(3))
  t.same(history.after(ids[5]!), { gap: false, messages: [] }, 'nothing after the latest')
  const epoch = ids[0]!.split('-')[0]
  t.same(idsOf(history.after(`${epoch}-0`).messages), ids, 'the position before the first event')
  t.equal(history.after(`${epoch}-0`).gap, false)
})

t.test('keeps the last `capacity` events in a ring: an id older than them is a gap, then all kept', async t => {
  const history = new History(4)
  const ids = fill(history, 11)
  const older = history.after(ids[3]!)
  t.equal(older.gap, true)
  t.same(idsOf(older.messages), ids.slice(7))
  const edge = history.after(ids[6]!)
  t.equal(edge.gap, false, 'the id just before the oldest kept one misses nothing')
  t.same(idsOf(edge.messages), ids.slice(7))
})

t.test('an id that is not of this history is unknown: a gap, then all kept', async t => {
  const history = new History(3)
  const ids = fill(history, 5)
  const epoch = ids[0]!.split('-')[0]
  for (const id of ['garbage', `${epoch}-x`, `${epoch}-99`, `${Number(epoch) - 1}-4`, `${epoch}-`, '']) {
    const replay = history.after(id)
    t.equal(replay.gap, true, JSON.stringify(id))
    t.same(idsOf(replay.messages), ids.slice(2))
  }
})

t.test('two histories never share an epoch, even made in the same millisecond', async t => {
  const a = new History(5)
  const b = new History(5)
  const [idA] = fill(a, 1)
  fill(b, 1)
  t.not(a.nextId().split('-')[0], b.nextId().split('-')[0])
  t.equal(b.after(idA!).gap, true, 'an id of one is unknown to the other')
})

t.test('capacity 0 keeps nothing: the latest id misses nothing, an older one is a gap', async t => {
  const history = new History(0)
  const ids = fill(history, 3)
  t.same(history.after(ids[2]!), { gap: false, messages: [] })
  t.same(history.after(ids[1]!), { gap: true, messages: [] })
})

t.test('two processes never share an epoch, even when their histories begin in the same millisecond', async t => {
  // A second instance of the module is what another process has: state of its own, the same clock.
  const url: string = '../../lib/channels/history.js?process=2'
  const other = await import(url) as typeof import('../../lib/channels/history.js')
  const now = Date.now()
  t.capture(Date, 'now', () => now)
  const here = fill(new History(5), 3)
  const history = new other.History(5)
  const there = fill(history, 3)
  t.notOk(there.some(id => here.includes(id)), `${here} and ${there}`)
  t.equal(history.after(here[0]!).gap, true, 'an id of one is unknown to the other')
})

t.test('ids stay <digits>-<digits>, 15 digits at most each, and epochs do not follow the clock', async t => {
  const ids = Array.from({ length: 200 }, () => new History(1).nextId())
  t.ok(ids.every(id => ID_PATTERN.test(id)), ids.slice(0, 3).join())
  const epochs = ids.map(id => Number(id.split('-')[0]))
  t.equal(new Set(epochs).size, epochs.length, 'distinct within the process')
  t.ok(epochs.some(epoch => Math.abs(epoch - Date.now()) > 86_400_000), 'not the time of day')
})
