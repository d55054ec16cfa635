import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { startHeartbeat } from '../../lib/heartbeat.js'

t.test('calls onIdle after each idle interval', async t => {
  let beats = 0
  const heartbeat = startHeartbeat(20, () => { beats++ })
  await sleep(75)
  heartbeat.stop()
  t.ok(beats >= 2 && beats <= 4, `beats every 20 ms (${beats} in 75 ms)`)
})

t.test('touch() restarts the idle period', async t => {
  let beats = 0
  const heartbeat = startHeartbeat(40, () => { beats++ })
  for (let i = 0; i < 6; i++) {
    await sleep(15)
    heartbeat.touch()
  }
  heartbeat.stop()
  t.equal(beats, 0, 'no beat while something is written more often than the interval')
})

t.test('stop() ends the timer for good', async t => {
  let beats = 0
  const heartbeat = startHeartbeat(10, () => { beats++ })
  heartbeat.stop()
  await sleep(40)
  t.equal(beats, 0)
})

t.test('false turns heartbeats off', async t => {
  let beats = 0
  const heartbeat = startHeartbeat(false, () => { beats++ })
  heartbeat.touch()
  await sleep(20)
  heartbeat.stop()
  t.equal(beats, 0)
})
