import { createHash } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import type { SseSettings } from './options.js'

/** Which limit refused a stream. */
export type RefusalReason = 'max-streams' | 'client-streams' | 'channel-subscribers' | 'connect-rate'

/** Longer client keys are kept as their SHA-256 (44 characters). */
const MAX_KEY_LENGTH = 64
/** Clients one connect-rate window counts at most. */
const MAX_RATED_CLIENTS = 100_000

export const REFUSAL_REASONS: readonly RefusalReason[] = ['max-streams', 'client-streams', 'channel-subscribers',
  'connect-rate']

/**
 * Stream starts per client over a sliding window, estimated from two fixed windows: the count of the
 * current one plus the previous one's, weighted by how much of it the sliding window still covers.
 * Two maps swapped at each boundary: no timer, no sweep, and a client gone quiet costs nothing after
 * two windows.
 */
export class ConnectRate {
  readonly #max: number
  readonly #windowMs: number
  readonly #maxClients: number
  #current = new Map<string, number>()
  #previous = new Map<string, number>()
  #windowStart: number

  constructor (max: number, windowMs: number, now = Date.now(), maxClients = MAX_RATED_CLIENTS) {
    this.#max = max
    this.#windowMs = windowMs
    this.#maxClients = maxClients
    this.#windowStart = now
  }

  /** Count a start of `key` now, if it is within the rate; false (and nothing counted) if not. */
  take (key: string, now = Date.now()): boolean {
    const windows = Math.floor((now - this.#windowStart) / this.#windowMs)
    if (windows > 0) {
      this.#previous = windows === 1 ? this.#current : new Map()
      this.#current = new Map()
      this.#windowStart += windows * this.#windowMs
    }
    const overlap = 1 - (now - this.#windowStart) / this.#windowMs
    const current = this.#current.get(key) ?? 0
    if (current + (this.#previous.get(key) ?? 0) * overlap >= this.#max) return false
    // A flood of new clients (addresses are cheap) must not grow the window without bound: past the
    // cap, new ones go uncounted this window, and maxStreams still bounds what opens.
    if (current > 0 || this.#current.size < this.#maxClients) this.#current.set(key, current + 1)
    return true
  }

  /** Clients counted in the current window. */
  get clients (): number {
    return this.#current.size
  }
}

/**
 * Whether a new stream may open: counters kept as streams open and close, never a scan. The
 * per-client key is computed only when a per-client limit is set.
 */
/** The client's key by the app's `clientKey`, bounded. */
export function clientKeyOf (clientKey: (request: FastifyRequest) => string, request: FastifyRequest): string {
  const key = String(clientKey(request))
  // A key is whatever a header said (X-Forwarded-For behind trustProxy): keep a bounded one.
  return key.length <= MAX_KEY_LENGTH ? key : createHash('sha256').update(key).digest('base64')
}

export class Admission {
  readonly #settings: SseSettings
  readonly #perClient = new Map<string, number>()
  readonly #rate: ConnectRate | undefined
  readonly #keyed: boolean

  constructor (settings: SseSettings) {
    this.#settings = settings
    const { connectRate } = settings
    this.#rate = connectRate === false ? undefined : new ConnectRate(connectRate.max, connectRate.windowMs)
    this.#keyed = this.#rate !== undefined || settings.maxStreamsPerClient !== Infinity
  }

  /** The client's key for the per-client limits (a long one hashed); undefined when there are none. */
  keyOf (request: FastifyRequest): string | undefined {
    if (!this.#keyed) return undefined
    return clientKeyOf(this.#settings.clientKey, request)
  }

  /**
   * Why a stream of client `key` must be refused, with `open` streams on the app and `subscribers` on
   * the channel it subscribes to (this one included); undefined: it may open (and counts toward the rate).
   */
  refusal (key: string | undefined, open: number, subscribers: number): RefusalReason | undefined {
    const settings = this.#settings
    if (open >= settings.maxStreams) return 'max-streams'
    if (this.channelRefusal(subscribers) !== undefined) return 'channel-subscribers'
    if (key === undefined) return undefined
    if ((this.#perClient.get(key) ?? 0) >= settings.maxStreamsPerClient) return 'client-streams'
    if (this.#rate !== undefined && !this.#rate.take(key)) return 'connect-rate'
    return undefined
  }

  /** Whether a channel with `subscribers` (the new one included) is past its limit. */
  channelRefusal (subscribers: number): 'channel-subscribers' | undefined {
    return subscribers > this.#settings.maxChannelSubscribers ? 'channel-subscribers' : undefined
  }

  opened (key: string | undefined): void {
    if (key !== undefined) this.#perClient.set(key, (this.#perClient.get(key) ?? 0) + 1)
  }

  closed (key: string | undefined): void {
    if (key === undefined) return
    const count = this.#perClient.get(key)! - 1
    if (count === 0) this.#perClient.delete(key)
    else this.#perClient.set(key, count)
  }

  /** Clients with a stream open (for tests: the map never keeps a client that has none). */
  get clients (): number {
    return this.#perClient.size
  }
}
