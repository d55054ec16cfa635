import { setTimeout as sleep } from 'node:timers/promises'
import type { Redis } from 'ioredis'
import { connectionsOf, type ClientInfo, type OwnRedis } from '../fixtures/redis.js'

/** What the injector needs of whatever publishes: to strike right after a publish is sent, or resolved. */
export interface PublishWatch {
  nextSend (ms: number): Promise<void>
  nextPublished (ms: number): Promise<void>
}

// How the fault-injection suite strikes a Redis of its own: the plugin's connections found by name in
// CLIENT LIST and killed by id (never the suite's own admin connection), and faults timed around a
// publish in flight, where an outcome is unknown and copies are born.

/** How long a fault waits for a publish to be in flight, to strike then. */
const SEND_WAIT_MS = 2000
/** How long the injector waits for each app to have its two connections before it kills them. */
const CONNECTIONS_MS = 5000

/** What only the plugin's subscriber connection sends (its command connection runs scripts). */
const SUBSCRIBER_COMMANDS = new Set(['subscribe', 'unsubscribe', 'ssubscribe', 'sunsubscribe', 'ping'])

/** Subscribed now (flag P), or subscribed before: an app whose every subscriber left unsubscribed it. */
function isSubscriber (connection: ClientInfo): boolean {
  return connection.flags?.includes('P') === true || SUBSCRIBER_COMMANDS.has(connection.cmd ?? '')
}

export interface PluginConnections {
  /** Ids of the subscriber connections. */
  readonly subscribers: string[]
  /** Ids of the command connections. */
  readonly commands: string[]
  /** What CLIENT LIST said, for a report when the counts are not those expected. */
  readonly listed: string
}

export class Injector {
  readonly #redis: OwnRedis
  readonly #admin: Redis
  readonly #connectionName: string
  readonly #producer: PublishWatch

  /** `prefix` is the apps' redisPrefix: the plugin names its connections after it. */
  constructor (redis: OwnRedis, admin: Redis, prefix: string, producer: PublishWatch) {
    this.#redis = redis
    this.#admin = admin
    this.#connectionName = 'fastify-sse-stream:' + prefix
    this.#producer = producer
  }

  /** The plugin's connections, once there are two for each of `apps` (or after a bound: one may be reconnecting). */
  async connections (apps: number): Promise<PluginConnections> {
    const deadline = Date.now() + CONNECTIONS_MS
    for (;;) {
      const connections = await connectionsOf(this.#admin, this.#connectionName)
      const subscribers = connections.filter(isSubscriber).map(c => c.id!)
      const commands = connections.filter(c => !isSubscriber(c)).map(c => c.id!)
      if ((subscribers.length === apps && commands.length === apps) || Date.now() > deadline) {
        const listed = connections.map(c => `id=${c.id} flags=${c.flags} sub=${c.sub} cmd=${c.cmd} age=${c.age}`).join(' | ')
        return { subscribers, commands, listed }
      }
      await sleep(50)
    }
  }

  /** CLIENT KILL ID of each, sent at once. */
  kill (ids: readonly string[]): Promise<unknown> {
    return Promise.all(ids.map(id => this.#admin.call('CLIENT', 'KILL', 'ID', id)))
  }

  /** CLIENT PAUSE <ms> ALL: Redis answers no one (the admin connection included) until it is over. */
  async pause (ms: number): Promise<void> {
    await this.#admin.call('CLIENT', 'PAUSE', String(ms), 'ALL')
    await sleep(ms)
  }

  /**
   * `act` around a publish in flight, in a chosen order. Redis is frozen (SIGSTOP), the next publish
   * and `act`'s commands reach its socket buffers, and it is thawed: it reads them in the order they
   * came, in one turn. 'publish first': Redis runs the publish, then `act`, before anything it owes is
   * written (the publish's answer, its announcements). 'fault first': `act` runs while the publish
   * still waits unread in its socket (a connection closed then is reset: its client sees an error).
   */
  async aroundPublish (order: 'publish first' | 'fault first', act: () => Promise<unknown>): Promise<void> {
    this.#redis.freeze()
    let acting: Promise<unknown> = Promise.resolve()
    try {
      if (order === 'fault first') {
        acting = act()
        await sleep(5)
      }
      await this.#producer.nextSend(SEND_WAIT_MS)
      await sleep(5)
      if (order === 'publish first') {
        acting = act()
        await sleep(5)
      }
    } finally {
      this.#redis.thaw()
    }
    await acting
  }

  /** A crash (kill -9) right after a publish is sent, and a restart `downMs` later with what Redis persisted. */
  async crashWithPublishInFlight (downMs: number): Promise<void> {
    await this.#producer.nextSend(SEND_WAIT_MS)
    await this.#redis.kill()
    await sleep(downMs)
    await this.#redis.start()
  }

  /**
   * A crash (kill -9) right after a publish resolved, and a restart `downMs` later without the data.
   * `onDown` is called while it is down (what was acknowledged until then is what it lost); resolves once it is back.
   */
  async crashAndWipe (downMs: number, onDown: () => void): Promise<void> {
    await this.#producer.nextPublished(SEND_WAIT_MS)
    await this.#redis.kill()
    onDown()
    await sleep(downMs)
    await this.#redis.restart({ wipe: true })
  }
}
