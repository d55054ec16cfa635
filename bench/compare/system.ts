// What every system under comparison is given and must offer. The sources are the same objects for
// every system, so a difference in the numbers is a difference in how the system drives them.
import { setTimeout as sleep } from 'node:timers/promises'

export interface Tick { i: number, symbol: string, price: number }

/** One broadcast event: its number, when the producer meant it to go out, when publish() ran (epoch ms). */
export interface BroadcastPayload { s: number, d: number, t: number }

/** A server built by one system, listening on a loopback port. */
export interface System {
  port: number
  /** Sends one event to every subscriber of /broadcast, the way this system broadcasts. */
  publish (payload: BroadcastPayload): void
  /** Subscribers of /broadcast, as the system counts them. */
  subscribers (): number
  close (): Promise<void>
}

/**
 * Every system serves the same routes:
 * - GET /stream?n=N        N ticks from `sources.ticks(N)`, then the end (workload 1)
 * - GET /broadcast         subscribes to the broadcast and stays open (workloads 2 and 3)
 * - GET /drop-source?id=K  `sources.dropFeed(K, signal)`, the signal aborting when the client leaves (workload 4)
 * - GET /stall             `sources.stallFeed()` (workload 4)
 */
export type BuildSystem = (sources: Sources) => Promise<System>

export const epoch = (): number => performance.timeOrigin + performance.now()

export const tick = (i: number): Tick => ({ i, symbol: 'ACME', price: 100 + (i % 100) / 100 })

/** A live feed's pace in workload 4: one value at once, then one per interval (a quiet ticker). */
export const DROP_FEED_INTERVAL_MS = 2000
/** What the stalled client's source could yield (fewer in a quick run: a system without backpressure pulls them all). */
export const STALL_VALUES = process.env.BENCH_COMPARE_QUICK === '1' ? 200_000 : 1_000_000

/** The generators every system streams, with the counters workload 4 reads. */
export class Sources {
  /** When each drop-source generator was finalized (epoch ms), by the id its client sent. */
  readonly dropFinalizedAt = new Map<string, number>()
  dropOpened = 0
  stallPulled = 0
  stallFinalizedAt: number | undefined
  stallExhausted = false

  /** Workload 1: `count` small JSON objects as fast as the consumer pulls (as bench/stream.ts streams). */
  async * ticks (count: number): AsyncGenerator<Tick> {
    for (let i = 0; i < count; i++) yield tick(i)
  }

  /**
   * Workload 4: a live feed waiting on a timer between values. It ends quietly once `signal` aborts,
   * so it is finalized as soon as the system tells it the client left (each in its documented way).
   */
  async * dropFeed (id: string, signal: AbortSignal): AsyncGenerator<Tick> {
    this.dropOpened++
    try {
      for (let i = 0; ; i++) {
        yield tick(i)
        try {
          await sleep(DROP_FEED_INTERVAL_MS, undefined, { signal })
        } catch {
          return
        }
      }
    } finally {
      this.dropFinalizedAt.set(id, epoch())
    }
  }

  /** Workload 4: a fast source; every value it yields is one the system pulled. */
  async * stallFeed (): AsyncGenerator<Tick> {
    try {
      for (let i = 0; i < STALL_VALUES; i++) {
        this.stallPulled++
        yield tick(i)
      }
      this.stallExhausted = true
    } finally {
      this.stallFinalizedAt = epoch()
    }
  }
}

/** The `n` of /stream?n=N and the `id` of /drop-source?id=K, from a raw request URL. */
export function queryParam (url: string | undefined, name: string): string {
  const value = new URL(url ?? '/', 'http://x').searchParams.get(name)
  if (value === null) throw new Error(`missing ?${name}=`)
  return value
}
