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
