import { FST_SSE_INVALID_OPTION } from '../../errors.js'
import { withTimeout } from '../../timeout.js'
import type { SseRedisClient } from './client.js'

// Opening, closing and timing the connections the backend uses.

/** Redis did not answer in time: the command may still run (it was sent, or is queued). */
export class TimedOut extends Error {}

export function bounded<T> (promise: Promise<T>, ms: number): Promise<T> {
  return withTimeout(promise, ms, () => { throw new TimedOut(`Redis did not answer within ${ms} ms`) })
}

export function ignore (): void {}

/** Resolves when `client` is ready; rejects on its first error (a wrong URL fails registration) or after `ms`. */
export async function connected (client: SseRedisClient, ms: number): Promise<void> {
  if (client.status === 'ready') return
  let onReady: (() => void) | undefined
  let onError: ((err: Error) => void) | undefined
  const ready = bounded(new Promise<void>((resolve, reject) => {
    client.once('ready', onReady = resolve).once('error', onError = reject)
  }), ms)
  // Its first 'error' says why (ECONNREFUSED, NOAUTH...); connect()'s own rejection does not.
  if (client.status === 'wait') client.connect().catch(ignore)
  try {
    await ready
  } finally {
    client.removeListener('ready', onReady!).removeListener('error', onError!)
  }
}

/** QUIT, bounded in time; a connection that is not up, or does not answer, is dropped. */
export function quit (client: SseRedisClient, ms: number): Promise<unknown> | undefined {
  if (client.status !== 'ready') {
    client.disconnect()
    return
  }
  return bounded(client.quit(), ms).catch(() => client.disconnect())
}

/** A TIME round trip under this measures the clock well enough; a slower one is measured again. */
const TIGHT_MS = 20
const SYNC_ATTEMPTS = 5

/** How often a Cluster subscriber looks for slots that moved. */
const SLOTS_REFRESH_MS = 2000

/** What CLIENT LIST shows for the connections the plugin opens (a name may not contain spaces). */
export function connectionNameOf (prefix: string): string {
  return 'fastify-sse-stream:' + prefix.replace(/[^\x21-\x7e]/g, '_')
}

/**
 * The pub/sub connection(s): a duplicate of the command client that neither queues commands while
 * disconnected (each reconnecting client would add a SUBSCRIBE and an UNSUBSCRIBE to replay in one
 * burst) nor resubscribes by itself: the backend subscribes to what it watches when the connection
 * is ready, and knows from then on that nothing is missed. On a Cluster, one per master, subscribed
 * with sharded pub/sub.
 */
export function duplicateSubscriber (client: SseRedisClient, prefix: string): SseRedisClient {
  // A SUBSCRIBE unanswered when the connection drops is not sent again either: it may be for a
  // channel nobody watches any more.
  const subscriberOptions = {
    lazyConnect: true,
    connectionName: connectionNameOf(prefix),
    autoResubscribe: false,
    autoResendUnfulfilledCommands: false,
    enableOfflineQueue: false
  }
  if (client.isCluster === true) {
    // A Cluster copies its options shallowly: its nodes' options are replaced whole. Sharded
    // subscribers open one connection per master that owns a subscribed slot.
    const options = client.options as { redisOptions?: object }
    // ioredis routes each shard channel to the master that owns it only with this option (5.6, fixed in 5.10.1).
    if (!('shardedSubscribers' in options)) {
      throw new FST_SSE_INVALID_OPTION('redis', 'a Cluster needs ioredis 5.10.1 or later (sharded pub/sub)')
    }
    return client.duplicate([], {
      lazyConnect: true,
      shardedSubscribers: true,
      enableOfflineQueue: false,
      // ioredis restores a sharded subscription moved to another master only when it refreshes its
      // slots, which it does not do by itself unless asked to.
      slotsRefreshInterval: SLOTS_REFRESH_MS,
      // Each master's shard subscriber is resubscribed by ioredis itself when that master comes back.
      redisOptions: { ...options.redisOptions, ...subscriberOptions, autoResubscribe: true }
    })
  }
  return client.duplicate(subscriberOptions)
}

/**
 * Redis' clock as seen from here, so a publish can carry a deadline Redis checks itself: a command
 * that times out here may still be queued (in ioredis, in the kernel, in a paused Redis) and run later.
 */
export class RedisClock {
  /** Redis ms minus local ms, measured at the last `sync`. */
  #offset = 0
  /** How far off `#offset` may be: half the round trip that measured it, and the ms Redis rounds down. */
  #error = 0

  /**
   * Measure the offset with TIME (half the round trip is the error). A slow answer (a busy event
   * loop, a loaded Redis) is measured again, a few times, keeping the tightest: an error as large as
   * the publish timeout would put every deadline in the past.
   */
  async sync (client: SseRedisClient): Promise<void> {
    let best = Infinity
    for (let attempt = 0; attempt < SYNC_ATTEMPTS && best > TIGHT_MS; attempt++) {
      const before = Date.now()
      const [seconds, micros] = await (client as unknown as { time (): Promise<[string, string]> }).time()
      const after = Date.now()
      if (after - before >= best) continue
      best = after - before
      this.#offset = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000) - (before + after) / 2
      this.#error = Math.ceil((after - before) / 2) + 1
    }
  }

  /** Now in Redis' time (ms), or a little earlier, never later. */
  earliestNow (): number {
    return Math.floor(Date.now() + this.#offset - this.#error)
  }

  /** Now plus `ms` in Redis' time, or a little earlier, never later: a late run is refused, whatever the offset's error. */
  deadline (ms: number): number {
    return Math.floor(Date.now() + ms + this.#offset - this.#error)
  }
}
