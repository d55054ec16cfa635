import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { HeartbeatClock, type Beating } from '../../lib/heartbeat.js'

/** A member that writes whenever it is asked to beat, as a pump with room in its socket does. */
function member (): Beating & { beats: number[], write (): void } {
  const start = performance.now()
  return {
    idleTicks: 0,
    beats: [],
    beat () { this.beats.push(performance.now() - start); this.write() },
    write () { this.idleTicks = 0 }
  }
}

t.test('asks an idle member to beat after one to 1.25 intervals of silence, again and again', async t => {
  const clock = new HeartbeatClock()
  const idle = member()
  clock.add(idle, 40)
  await sleep(230)
  clock.delete(idle, 40)
  t.ok(idle.beats.length >= 3 && idle.beats.length <= 5, `${idle.beats.length} beats in 230 ms at 40 ms`)
  const gaps = idle.beats.map((at, i) => at - (idle.beats[i - 1] ?? 0))
  for (const gap of gaps) t.ok(gap >= 35, `no beat sooner than an interval of silence (${gap.toFixed(0)} ms)`)
})

t.test('a member that writes more often than the interval is never asked', async t => {
  const clock = new HeartbeatClock()
  const busy = member()
  clock.add(busy, 40)
  for (let i = 0; i < 10; i++) {
    await sleep(15)
    busy.write()
  }
  clock.delete(busy, 40)
  t.same(busy.beats, [])
})

t.test('one timer per interval whatever the number of members, gone with the last member', async t => {
  const clock = new HeartbeatClock()
  const members = Array.from({ length: 100 }, member)
  for (const m of members) clock.add(m, 1000)
  const other = member()
  clock.add(other, 2000)
  t.equal(clock.timers, 2, 'one timer for 100 members at 1000 ms, one for the member at 2000 ms')
  for (const m of members) clock.delete(m, 1000)
  t.equal(clock.timers, 1)
  clock.delete(other, 2000)
  clock.delete(other, 2000)
  clock.delete(other, 3000)
  t.equal(clock.timers, 0, 'no timer left behind; deleting twice, or from an interval never used, is harmless')
})

t.test('false means no heartbeat: nothing is scheduled', async t => {
  const clock = new HeartbeatClock()
  const quiet = member()
  clock.add(quiet, false)
  t.equal(clock.timers, 0)
  await sleep(20)
  clock.delete(quiet, false)
  t.same(quiet.beats, [])
})
