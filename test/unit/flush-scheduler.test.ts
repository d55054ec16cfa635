import t from 'tap'
import { FlushScheduler, type Flushable, type SchedulerClock } from '../../lib/flush-scheduler.js'

/** A clock the test moves by hand: timers, immediates and ticks run only when it says so. */
function fakeClock (): SchedulerClock & { time: number, timers: Array<{ at: number, run: () => void }>, immediates: Array<() => void>, ticks: Array<() => void>, runImmediates (): void, advance (ms: number): void } {
  return {
    time: 0,
    timers: [],
    immediates: [],
    ticks: [],
    now () { return this.time },
    setTimeout (run, ms) { this.timers.push({ at: this.time + ms, run }) },
    setImmediate (run) { this.immediates.push(run) },
    nextTick (run) { this.ticks.push(run) },
    runImmediates () {
      const due = this.immediates.splice(0)
      for (const run of due) {
        run()
        for (let tick = this.ticks.shift(); tick !== undefined; tick = this.ticks.shift()) tick()
      }
    },
    advance (ms) {
      this.time += ms
      const due = this.timers.filter(timer => timer.at <= this.time)
      this.timers = this.timers.filter(timer => timer.at > this.time)
      for (const timer of due) {
        timer.run()
        for (let tick = this.ticks.shift(); tick !== undefined; tick = this.ticks.shift()) tick()
      }
    }
  }
}

/** A stream with frames waiting; `cost` is how long its write takes on the fake clock. */
function writer (clock: { time: number }, log: string[], name: string, cost = 0): Flushable {
  return { flushDue () { log.push(name); clock.time += cost } }
}

t.test('a round flushes everything queued in the turn, once, on the next immediate', async t => {
  const clock = fakeClock()
  const scheduler = new FlushScheduler(clock)
  const log: string[] = []
  scheduler.queue(writer(clock, log, 'a'))
  scheduler.queue(writer(clock, log, 'b'))
  t.equal(clock.immediates.length, 1, 'one callback for the whole turn')
  t.same(log, [], 'nothing written synchronously')
  clock.runImmediates()
  t.same(log, ['a', 'b'])
  clock.runImmediates()
  t.same(log, ['a', 'b'], 'each flushed once')
})

t.test('after a round that took T ms, the next waits until T ms have passed since it ended', async t => {
  const clock = fakeClock()
  const scheduler = new FlushScheduler(clock)
  const log: string[] = []
  scheduler.queue(writer(clock, log, 'slow', 20))
  clock.runImmediates()
  t.equal(clock.time, 20, 'the round took 20 ms')
  scheduler.queue(writer(clock, log, 'next'))
  t.equal(clock.immediates.length, 0, 'not right away')
  t.same(clock.timers.map(timer => timer.at), [40], 'but 20 ms after the round ended')
  scheduler.queue(writer(clock, log, 'also'))
  t.equal(clock.timers.length, 1, 'one timer, however much is queued meanwhile')
  clock.advance(19)
  t.same(log, ['slow'])
  clock.advance(1)
  t.same(log, ['slow', 'next', 'also'], 'both in the one delayed round')
})

t.test('once the loop has been free as long as the last round took, a round starts right away again', async t => {
  const clock = fakeClock()
  const scheduler = new FlushScheduler(clock)
  const log: string[] = []
  scheduler.queue(writer(clock, log, 'slow', 10))
  clock.runImmediates()
  clock.time += 10
  scheduler.queue(writer(clock, log, 'later'))
  t.equal(clock.immediates.length, 1, 'on the next immediate')
  t.equal(clock.timers.length, 0)
  clock.runImmediates()
  t.same(log, ['slow', 'later'])
})

t.test('two schedulers (two apps) never pace each other', async t => {
  const clock = fakeClock()
  const busy = new FlushScheduler(clock)
  const quiet = new FlushScheduler(clock)
  const log: string[] = []
  busy.queue(writer(clock, log, 'busy', 50))
  clock.runImmediates()
  quiet.queue(writer(clock, log, 'quiet'))
  t.equal(clock.immediates.length, 1, "the quiet app's round is not delayed by the busy app's")
  clock.runImmediates()
  t.same(log, ['busy', 'quiet'])
})

t.test('the default clock is the real one', async t => {
  const scheduler = new FlushScheduler()
  const flushed = await new Promise<boolean>(resolve => { scheduler.queue({ flushDue: () => resolve(true) }) })
  t.ok(flushed)
})

t.test('a round too long for one slice is written in slices, with a turn of the event loop between them', async t => {
  const clock = fakeClock()
  const scheduler = new FlushScheduler(clock)
  const log: string[] = []
  for (let i = 0; i < 200; i++) scheduler.queue(writer(clock, log, `s${i}`, 0.5))
  clock.runImmediates()
  t.equal(log.length, 64, 'a first slice of 64 streams (32 ms at 0.5 ms each)')
  t.equal(clock.immediates.length, 1, 'the rest after a turn: timers due meanwhile fire first')
  clock.runImmediates()
  t.equal(log.length, 64 + 16, 'then as many as fit in 8 ms at the pace seen: 16')
  for (let turns = 0; clock.immediates.length > 0 && turns < 20; turns++) clock.runImmediates()
  t.equal(log.length, 200, 'until every stream of the round is written')
  t.same(log, Array.from({ length: 200 }, (_, i) => `s${i}`), 'in the order they were queued, each once')
})

t.test('a slice grows to what fits in 8 ms when streams write fast', async t => {
  const clock = fakeClock()
  const scheduler = new FlushScheduler(clock)
  const log: string[] = []
  for (let i = 0; i < 1000; i++) scheduler.queue(writer(clock, log, 'fast', 1 / 64))
  clock.runImmediates()
  t.equal(log.length, 64, 'a first slice of 64: 1 ms')
  clock.runImmediates()
  t.equal(log.length, 64 + 512, 'then 8 ms at 1/64 ms each')
})

t.test('streams queued while a round is written wait for the next, as long after it as its slices took', async t => {
  const clock = fakeClock()
  const scheduler = new FlushScheduler(clock)
  const log: string[] = []
  for (let i = 0; i < 80; i++) scheduler.queue(writer(clock, log, 'first', 0.5))
  clock.runImmediates()
  t.equal(log.length, 64, 'a first slice: 32 ms')
  // Between the slices: a producer's timer publishes; the loop is free for 10 ms.
  scheduler.queue(writer(clock, log, 'late'))
  clock.time += 10
  t.equal(clock.immediates.length, 1, 'only the rest of the round is scheduled')
  clock.runImmediates()
  t.equal(log.length, 80, 'the round is written (16 more: 8 ms)')
  t.notOk(log.includes('late'), 'not in the round that was being written')
  t.same(clock.timers.map(timer => timer.at), [50 + 40], 'the next round 40 ms (32 + 8 of writing) after the round ended')
  clock.advance(40)
  t.equal(log.at(-1), 'late')
})

t.test('a slice held up from outside (a GC pause, a VM\'s stolen time) does not hold back the next round as long again', async t => {
  // Seen in the gate: after a pause of many seconds in a slice, every stream of the app waited as long
  // again for its next write (its clients, a fault suite's, caught up with nothing for 15 s).
  const clock = fakeClock()
  const scheduler = new FlushScheduler(clock)
  const log: string[] = []
  scheduler.queue(writer(clock, log, 'paused', 30_000))
  clock.runImmediates()
  scheduler.queue(writer(clock, log, 'next'))
  const startsAt = clock.immediates.length > 0 ? clock.time : clock.timers[0]!.at
  t.ok(startsAt - clock.time <= 32, `the next round starts ${startsAt - clock.time} ms after, not 30 s`)
  clock.advance(32)
  clock.runImmediates()
  t.same(log, ['paused', 'next'])
})
