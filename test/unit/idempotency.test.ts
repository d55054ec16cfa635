import t from 'tap'
import { IdempotencyKeys } from '../../lib/channels/idempotency.js'

t.test('a key is remembered with its id for the window, then forgotten: nothing is kept past the window', async t => {
  const keys = new IdempotencyKeys(1000)
  keys.remember('a', '1-1', 0)
  keys.remember('b', '1-2', 500)
  t.equal(keys.idOf('a', 999), '1-1')
  t.equal(keys.idOf('b', 999), '1-2')
  t.equal(keys.idOf('c', 999), undefined)
  t.equal(keys.idOf('a', 1000), undefined, 'a key as old as the window is gone')
  t.equal(keys.size, 1, 'and no longer held')
  t.equal(keys.idOf('b', 1500), undefined)
  t.equal(keys.size, 0)
})
