import t, { type Test } from 'tap'
import { mock } from 'node:test'
import { HeartbeatClock, type Beating } from '../../lib/heartbeat.js'

// On mocked timers: time moves only when the test moves it, a millisecond at a time, so every count
// below is exact. The clock ticks four times an interval: at 40 ms, every 10 ms.

const INTERVAL = 40

/** Mocked setInterval and clearInterval for one test; `advance(ms)` runs every timer due on the way. */
function fakeTime (t: Test): { readonly now: number, advance (ms: number): void } {
  mock.timers.enable({ apis: ['setInterval'] })
  t.teardown(() => mock.timers.reset())
  let now = 0
  return {
    get now () { return now },
    advance (ms) {
      for (let i = 0; i < ms; i++) {
        now++
        mock.timers.tick(1)
      }
    }
  }
}

/** A member that writes whenever it is asked to beat, as a pump with room in its socket does. */
function member (time: { readonly now: number }): Beating & { beats: number[], write (): void } {
  return {
    idleTicks: 0,
    beats: [],
    beat () { this.beats.push(time.now); this.write() },
    write () { this.idleTicks = 0 }
  }
}

t.test('asks an idle member to beat after one to 1.25 intervals of silence, wherever between two ticks it began', async t => {
  const time = fakeTime(t)
  const silences: number[] = []
  for (let phase = 0; phase < INTERVAL / 4; phase++) {
    const clock = new HeartbeatClock()
    const idle = member(time)
    clock.add(idle, INTERVAL)
    time.advance(phase)
    idle.write()
    const wroteAt = time.now
    time.advance(2 * INTERVAL)
    clock.delete(idle, INTERVAL)
    t.equal(idle.beats.length, 1, `one beat in the two intervals after a write ${phase} ms past a tick`)
    silences.push(idle.beats[0]! - wroteAt)
  }
  t.ok(silences.every(silence => silence > INTERVAL && silence <= 1.25 * INTERVAL), 'more than one interval, at most 1.25')
  t.same(silences, [50, 49, 48, 47, 46, 45, 44, 43, 42, 41], 'the fifth tick after the write')
})

t.test('asks it again and again while it stays idle', async t => {
  const time = fakeTime(t)
  const clock = new HeartbeatClock()
  const idle = member(time)
  idle.idleTicks = 99
  clock.add(idle, INTERVAL)
  time.advance(10 * INTERVAL)
  clock.delete(idle, INTERVAL)
  t.same(idle.beats, [50, 100, 150, 200, 250, 300, 350, 400], 'its silence counted from when it was added, whatever count it came with')
})

t.test('a member that writes more often than the interval is never asked', async t => {
  const time = fakeTime(t)
  const clock = new HeartbeatClock()
  const busy = member(time)
  const idle = member(time)
  clock.add(busy, INTERVAL)
  clock.add(idle, INTERVAL)
  for (let i = 0; i < 100; i++) {
    time.advance(INTERVAL - 1)
    busy.write()
  }
  clock.delete(busy, INTERVAL)
  clock.delete(idle, INTERVAL)
  t.same(busy.beats, [], `never, in ${time.now} ms of writes every ${INTERVAL - 1} ms`)
  t.equal(idle.beats.length, 78, 'while an idle member of the same clock was asked every 50 ms')
})

t.test('one timer per interval whatever the number of members, gone with the last member', async t => {
  const time = fakeTime(t)
  const intervals = t.capture(globalThis, 'setInterval', globalThis.setInterval)
  const cleared = t.capture(globalThis, 'clearInterval', globalThis.clearInterval)
  const clock = new HeartbeatClock()
  const members = Array.from({ length: 100 }, () => member(time))
  for (const m of members) clock.add(m, 1000)
  const other = member(time)
  clock.add(other, 2000)
  t.equal(intervals().length, 2, 'one timer for 100 members at 1000 ms, one for the member at 2000 ms')
  t.equal(clock.timers, 2)
  time.advance(1250)
  t.ok(members.every(m => m.beats.join() === '1250'), 'every member of a timer asked at the same tick')
  const [last, ...others] = members
  for (const m of others) clock.delete(m, 1000)
  t.equal(clock.timers, 2, 'a timer stays while it has a member')
  t.equal(cleared().length, 0)
  time.advance(1250)
  t.same(last!.beats, [1250, 2500], 'and goes on asking it')
  t.same(other.beats, [2500])
  clock.delete(last!, 1000)
  t.equal(clock.timers, 1)
  t.equal(cleared().length, 1, 'cleared with its last member')
  clock.delete(other, 2000)
  clock.delete(other, 2000)
  clock.delete(other, 3000)
  t.equal(clock.timers, 0, 'no timer left behind; deleting twice, or from an interval never used, is harmless')
  t.equal(cleared().length, 1, 'the other one cleared, once')
  time.advance(10_000)
  t.ok([...members, other].every(m => m.beats.at(-1) === 2500 || m.beats.join() === '1250'), 'nobody asked once deleted')
})

t.test('false means no heartbeat: nothing is scheduled', async t => {
  const time = fakeTime(t)
  const intervals = t.capture(globalThis, 'setInterval', globalThis.setInterval)
  const clock = new HeartbeatClock()
  const quiet = member(time)
  clock.add(quiet, false)
  t.equal(intervals().length, 0)
  t.equal(clock.timers, 0)
  time.advance(10_000)
  clock.delete(quiet, false)
  t.same(quiet.beats, [])
})
