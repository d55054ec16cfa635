/** Something with frames waiting, written out in the next round. */
export interface Flushable {
  /** Write what is waiting (nothing, if it already did). */
  flushDue (): void
}

/** The timers a scheduler uses: the real ones, or a test's. */
export interface SchedulerClock {
  now (): number
  setTimeout (callback: () => void, ms: number): unknown
  setImmediate (callback: () => void): unknown
  nextTick (callback: () => void): void
}

const systemClock: SchedulerClock = {
  now: () => performance.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  setImmediate: callback => setImmediate(callback),
  nextTick: callback => { process.nextTick(callback) }
}

/**
 * One flush round for every stream of an app written in a turn, instead of a callback each. A round
 * starts right away when the loop has been free at least as long as the last round took, otherwise
 * once it has been: under a broadcast burst, writes take at most about half the event loop (other
 * requests keep being served), and what arrives meanwhile for a socket goes out in the same write.
 */
export class FlushScheduler {
  readonly #clock: SchedulerClock
  #due: Flushable[] = []
  #scheduled = false
  #roundStartedAt = 0
  /** The next round starts no sooner than this (ms, on the clock). */
  #nextRoundAt = 0

  constructor (clock: SchedulerClock = systemClock) {
    this.#clock = clock
  }

  /** Flush `item` in the next round. The caller queues each item at most once per round. */
  queue (item: Flushable): void {
    this.#due.push(item)
    if (this.#scheduled) return
    this.#scheduled = true
    const wait = this.#nextRoundAt - this.#clock.now()
    if (wait >= 1) this.#clock.setTimeout(this.#round, wait)
    else this.#clock.setImmediate(this.#round)
  }

  #round = (): void => {
    this.#roundStartedAt = this.#clock.now()
    this.#scheduled = false
    const due = this.#due
    this.#due = []
    for (const item of due) item.flushDue()
    // Node's HTTP layer makes the system calls for these writes on the next ticks: the round ends
    // after them (the tick queue runs in order).
    this.#clock.nextTick(this.#roundDone)
  }

  /** A round that took T ms is followed by the next no sooner than T ms after it ended. */
  #roundDone = (): void => {
    const now = this.#clock.now()
    this.#nextRoundAt = now + (now - this.#roundStartedAt)
  }
}
