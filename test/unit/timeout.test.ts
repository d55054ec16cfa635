import t from 'tap'
import { withTimeout } from '../../lib/timeout.js'

t.test('what the promise gives, when it settles first', async t => {
  t.equal(await withTimeout(Promise.resolve('value'), 1000, () => 'late'), 'value')
  await t.rejects(withTimeout(Promise.reject(new Error('boom')), 1000, () => 'late'), { message: 'boom' })
})

t.test('what onTimeout returns, or throws, when the time passes first', async t => {
  const never = new Promise<string>(() => {})
  t.equal(await withTimeout(never, 5, () => 'fallback'), 'fallback')
  await t.rejects(withTimeout(never, 5, () => { throw new Error('timed out') }), { message: 'timed out' })
})

t.test('the timer is cleared once the promise settles: it neither fires later nor holds the process', async t => {
  let fired = false
  await withTimeout(Promise.resolve(1), 20, () => { fired = true; return 0 })
  const timers = process.getActiveResourcesInfo().filter(kind => kind === 'Timeout').length
  await new Promise(resolve => setTimeout(resolve, 40))
  t.notOk(fired)
  t.ok(timers <= 1, 'no timer of its own left (the test\'s sleep aside)')
})
