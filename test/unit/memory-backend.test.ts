import t from 'tap'
import { MemoryBackend } from '../../lib/channels/memory-backend.js'
import type { ChannelMessage } from '../../lib/index.js'
import { forceGc } from '../fixtures/gc.js'

// The in-memory backend's own bookkeeping; its behaviour as a channel backend is the contract
// (test/backends/memory.test.ts).

function backend (): { memory: MemoryBackend, delivered: ChannelMessage[] } {
  const delivered: ChannelMessage[] = []
  const memory = new MemoryBackend(10, 60_000, JSON.stringify, { deliver: (_channel, message) => delivered.push(message), gap () {} })
  return { memory, delivered }
}

t.test('forget(channel) drops its history and its idempotency keys, and nothing of another channel', async t => {
  const { memory } = backend()
  const first = await memory.publish('news', { data: 1 }, 'k')
  const other = await memory.publish('sport', { data: 1 }, 'k')
  memory.forget('news')
  t.same(await memory.replay('news', first), { gap: true, messages: [] }, 'an id of the forgotten history is unknown')
  const again = await memory.publish('news', { data: 1 }, 'k')
  t.not(again, first, 'the key publishes anew')
  t.equal(await memory.publish('sport', { data: 1 }, 'k'), other, 'the other channel still knows its key')
  t.equal((await memory.replay('sport', other)).gap, false)
})

t.test('records: a publish that records its end adds the event\'s id to the record and sets its lifetime; an expired record is gone', async t => {
  const { memory, delivered } = backend()
  t.equal(await memory.readRecord('a'), undefined)
  await memory.createRecord('a', { start: '1-1' }, 60_000)
  const end = await memory.publish('a', { event: 'sse-end', data: '{}' }, undefined, undefined, { recordEnd: 60 })
  t.strictSame(await memory.readRecord('a'), { start: '1-1', end }, 'merged, with the id the event got')
  t.equal(delivered.at(-1)?.id, end, 'and delivered')
  await new Promise(resolve => setTimeout(resolve, 100))
  t.equal(await memory.readRecord('a'), undefined, 'past the lifetime the end set')
  await memory.publish('b', { data: 'x' }, undefined, undefined, { recordEnd: 60_000 })
  t.strictSame(Object.keys((await memory.readRecord('b'))!), ['end'], 'an end alone, when there was no record')
})

t.test('createRecord makes a record only where none lives; the sweep drops expired records nobody reads again', async t => {
  const { memory } = backend()
  t.equal(await memory.createRecord('a', { start: '1-1' }, 40), true)
  t.equal(await memory.createRecord('a', { start: '9-9' }, 40), false, 'one lives: not made, not changed')
  t.equal(JSON.stringify(await memory.readRecord('a')), '{"start":"1-1"}')
  await memory.createRecord('long', { start: '2-1' }, 60_000)
  const swept = new WeakRef((await memory.readRecord('a'))!)
  memory.sweep(Date.now())
  t.ok(await memory.readRecord('a') !== undefined, 'not expired: kept by the sweep')
  memory.sweep(Date.now() + 41)
  // Read back only through the weak reference: a read would drop it by itself.
  await new Promise(resolve => setTimeout(resolve, 0))
  forceGc()
  t.equal(swept.deref(), undefined, 'the expired record is released without a read')
  t.strictSame(await memory.readRecord('long'), { start: '2-1' }, 'a record that lives on stays')
  await new Promise(resolve => setTimeout(resolve, 50))
  t.equal(await memory.createRecord('a', { start: '3-1' }, 40), true, 'an expired one is replaced')
})
