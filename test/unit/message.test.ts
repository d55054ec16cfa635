import t from 'tap'
import { prepare } from '../../lib/frame.js'
import { isMessage } from '../../lib/message.js'

// A yielded value is a message (its fields become lines) or the data of one event; isMessage decides.

t.test('a plain object whose keys are all message fields is a message', async t => {
  for (const key of ['id', 'event', 'data', 'retry', 'comment']) {
    t.ok(isMessage({ [key]: 1 }), `{ ${key} } is a message`)
  }
  t.ok(isMessage({ id: 1, event: 'e', data: 'x', retry: 0, comment: 'c' }), 'all five fields together')
  t.ok(isMessage({ data: undefined }), 'a field set to undefined still counts as a key')
})

t.test('an empty object is data, not a message', async t => {
  t.notOk(isMessage({}))
})

t.test('an object with any other key is data', async t => {
  t.notOk(isMessage({ temperature: 21 }))
  t.notOk(isMessage({ data: 1, extra: 2 }), 'one foreign key makes the whole object data')
  t.notOk(isMessage({ Data: 1 }), 'field names are case-sensitive')
})

t.test('a null-prototype object is read like a plain object', async t => {
  t.ok(isMessage(Object.assign(Object.create(null) as object, { data: 1, id: 'a' })))
  t.notOk(isMessage(Object.create(null)), 'and without keys it is data')
  t.notOk(isMessage(Object.assign(Object.create(null) as object, { other: 1 })))
})

t.test('class instances, arrays and other built-in objects are data, whatever their keys', async t => {
  class Reading { data = 1 }
  t.notOk(isMessage(new Reading()))
  t.notOk(isMessage(Object.create({ data: 1 })), 'an object with another prototype is data')
  t.notOk(isMessage([]))
  t.notOk(isMessage(['data']))
  t.notOk(isMessage(new Map([['data', 1]])))
  t.notOk(isMessage(new Date()))
  t.notOk(isMessage(Object.assign(() => {}, { data: 1 })), 'a function is never a message')
})

t.test('primitives and null are data', async t => {
  for (const value of [null, undefined, 'data', '', 0, 1, true, false, 1n, Symbol('data')]) {
    t.notOk(isMessage(value), `${String(value)} is data`)
  }
})

t.test('a prepared message is still a message', async t => {
  const prepared = prepare({ id: 1, data: 'x' }, JSON.stringify)
  t.ok(isMessage(prepared), 'the frame it carries is hidden from the key check')
})
