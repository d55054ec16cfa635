import t from 'tap'
import { DONE, Pull } from '../../lib/channels/pull.js'
import type { ChannelMessage } from '../../lib/index.js'

const message = (id: string): ChannelMessage => Object.freeze({ id, data: id })

t.test('takes one event per pull: the waiting pull gets it, and it asks for no more', async t => {
  const pull = new Pull()
  const waiting = pull.next()
  t.equal(pull.deliver(message('1-1')), false, 'the next event waits for the next pull')
  t.same(await waiting, { value: message('1-1'), done: false })
})

t.test('over: the waiting pull is done, and so is every later one', async t => {
  const pull = new Pull()
  const waiting = pull.next()
  pull.finish()
  t.same(await waiting, DONE)
  t.same(await pull.next(), DONE)
  const slow = new Pull()
  slow.tooSlow()
  t.same(await slow.next(), DONE, 'falling behind ends it the same way')
})

t.test('failed: the waiting pull throws, or the next one does, once; then every pull is done', async t => {
  const waited = new Pull()
  const waiting = waited.next()
  waited.finish(new Error('lost'))
  await t.rejects(waiting, { message: 'lost' })
  t.same(await waited.next(), DONE)
  const idle = new Pull()
  idle.finish(new Error('lost while nobody pulled'))
  await t.rejects(idle.next(), { message: 'lost while nobody pulled' })
  t.same(await idle.next(), DONE)
})
