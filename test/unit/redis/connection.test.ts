import t from 'tap'
import { RedisClock } from '../../../lib/channels/redis/connection.js'
import type { SseRedisClient } from '../../../lib/channels/redis/client.js'

// Redis' clock as an app sees it: measured once with TIME, so a publish's deadline can be checked by
// Redis itself. Its error is half the round trip that measured it: every time it gives errs early.

/** Redis' clock: 10 s ahead of this process's. */
const redisNow = (): number => Date.now() + 10_000

/** A client whose TIME is held `delayMs` before Redis reads its clock (a paused Redis, a slow network). */
function slowTime (delayMs: number): SseRedisClient {
  return {
    time: async () => {
      await new Promise(resolve => setTimeout(resolve, delayMs))
      const ms = redisNow()
      return [String(Math.floor(ms / 1000)), String((ms % 1000) * 1000)]
    }
  } as unknown as SseRedisClient
}

t.test('a slow TIME answer makes the clock err early, by up to its round trip: a deadline is never later than meant', async t => {
  const clock = new RedisClock()
  await clock.sync(slowTime(400))
  const deadline = clock.deadline(2000)
  const meant = redisNow() + 2000
  t.ok(deadline <= meant, `deadline ${meant - deadline} ms before the one meant, never after`)
  t.ok(deadline >= meant - 500, 'and early by no more than the round trip')
  t.ok(clock.earliestNow() <= redisNow(), 'now in Redis time errs early too')
})

t.test('a slow TIME answer is measured again: the deadline is not pushed into the past by a busy moment', async t => {
  const clock = new RedisClock()
  let calls = 0
  const client = {
    time: async () => {
      const delay = calls++ === 0 ? 2500 : 0
      await new Promise(resolve => setTimeout(resolve, delay))
      const ms = redisNow()
      return [String(Math.floor(ms / 1000)), String((ms % 1000) * 1000)]
    }
  } as unknown as SseRedisClient
  await clock.sync(client)
  t.ok(calls >= 2, 'measured again')
  const meant = redisNow() + 2000
  const deadline = clock.deadline(2000)
  t.ok(deadline <= meant && deadline >= meant - 30, `deadline ${meant - deadline} ms early, not 2.5 s`)
})
