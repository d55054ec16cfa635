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
 * How long one slice of a round may hold the event loop (ms). Writing to 5,000 sockets takes over
 * 100 ms: in one go, it held a producer's timer back that long, and every event after it was late.
 */
const SLICE_MS = 8
/**
 * The most a slice counts for (ms). A slice is sized to take SLICE_MS; one that took far longer was held
 * up from outside (a GC pause, a VM's stolen time, a debugger), not writing. Counted whole, a pause of
 * seconds held every stream of the app back as long again before its next write.
 */
const MAX_SLICE_MS = 4 * SLICE_MS
/** Bounds on the streams one slice writes, whatever the last slice's pace said. */
const MIN_SLICE = 16
const MAX_SLICE = 4096

/**
 * One flush round for every stream of an app written in a turn, instead of a callback each. A round
 * starts right away when the loop has been free at least as long as the last round took, otherwise
 * once it has been: under a broadcast burst, writes take at most about half the event loop (other
 * requests keep being served), and what arrives meanwhile for a socket goes out in the same write.
 * A long round is written in slices of about `SLICE_MS`, with a turn of the event loop between them:
 * timers (a producer's) fire on time, and what they publish reaches the streams the round has not
 * written yet in the same round.
 */
export class FlushScheduler {
  readonly #clock: SchedulerClock
  #due: Flushable[] = []
  /** A round (or its next slice) is scheduled. */
  #scheduled = false
  /** The round being written, and how far it got; null between rounds. */
  #round: Flushable[] | null = null
  #written = 0
  /** Time spent writing the round so far (ms), slices only: the turns between them are not its own. */
  #busy = 0
  #sliceStartedAt = 0
  /** How many streams a slice writes: sized from the last slice's time per stream. */
  #sliceSize = MIN_SLICE * 4
  /** How many the last slice wrote. */
  #sliceCount = 0
  /** The next round starts no sooner than this (ms, on the clock). */
  #nextRoundAt = 0

  constructor (clock: SchedulerClock = systemClock) {
    this.#clock = clock
  }

  /** Flush `item` in the next round. The caller queues each item at most once per round. */
  queue (item: Flushable): void {
    this.#due.push(item)
    if (this.#scheduled || this.#round !== null) return
    this.#schedule()
  }

  #schedule (): void {
    this.#scheduled = true
    const wait = this.#nextRoundAt - this.#clock.now()
    if (wait >= 1) this.#clock.setTimeout(this.#start, wait)
    else this.#clock.setImmediate(this.#start)
  }

  #start = (): void => {
    this.#scheduled = false
    this.#round = this.#due
    this.#due = []
    this.#written = 0
    this.#busy = 0
    this.#slice()
  }

  #slice = (): void => {
    this.#sliceStartedAt = this.#clock.now()
    const round = this.#round!
    const end = Math.min(round.length, this.#written + this.#sliceSize)
    for (let i = this.#written; i < end; i++) round[i]!.flushDue()
    this.#sliceCount = end - this.#written
    this.#written = end
    // Writes Node defers to the tick queue are part of the slice: it ends after them (in order).
    this.#clock.nextTick(this.#sliceDone)
  }

  #sliceDone = (): void => {
    const now = this.#clock.now()
    const took = Math.min(now - this.#sliceStartedAt, MAX_SLICE_MS)
    this.#busy += took
    // The next slice as large as fits in SLICE_MS at this one's pace (a full slice's, or a faster one's).
    const pace = took / this.#sliceCount
    this.#sliceSize = Math.max(MIN_SLICE, Math.floor(SLICE_MS / Math.max(pace, SLICE_MS / MAX_SLICE)))
    const round = this.#round!
    if (this.#written < round.length) {
      this.#clock.setImmediate(this.#slice)
      return
    }
    this.#round = null
    // A round that took T ms is followed by the next no sooner than T ms after it ended.
    this.#nextRoundAt = now + this.#busy
    if (this.#due.length > 0) this.#schedule()
  }
}
