import type { FastifyBaseLogger } from 'fastify'
import { describe } from '../describe.js'
import { FST_SSE_INVALID_CHANNEL, FST_SSE_INVALID_EVENTS, FST_SSE_INVALID_OPTION } from '../errors.js'
import { catalogOfResponse, type EventCatalog } from '../events/catalog.js'
import type { SseSettings } from '../options.js'
import type { SseStats } from '../stats.js'
import type { Channel, ChannelMessage, ChannelOptions } from '../types.js'
import type { BackendSink, ChannelBackend } from './backend.js'
import { SseChannel, type ChannelContext } from './channel.js'
import { MemoryBackend } from './memory-backend.js'

const MAX_NAME_LENGTH = 200

/** The events `options` declare, if any; options that are not a declaration are refused. */
function declaredEvents (options: ChannelOptions): EventCatalog | undefined {
  if (typeof options !== 'object' || options === null) throw new FST_SSE_INVALID_OPTION('channel options', 'pass an object')
  if (options.events === undefined) return undefined
  const events = catalogOfResponse(options.events)
  if (events === undefined) {
    throw new FST_SSE_INVALID_EVENTS(`the events of a channel are declared with sseEvents(); got ${describe(options.events)}`)
  }
  return events
}
/** Node turns a longer timer delay into 1 ms. */
const MAX_TIMER_DELAY = 2 ** 31 - 1

/**
 * Every channel of one app in use, by name, and the backend they share. A channel idle for
 * `channelIdleTimeout` is forgotten (its in-memory history too), so names taken from URLs or user ids
 * never add up; an object of it kept by the app still works, through the hub (`claim`).
 */
export class ChannelHub implements BackendSink {
  readonly #channels = new Map<string, SseChannel>()
  /**
   * Declared events by channel name, kept when an idle channel is forgotten: the channel made again
   * under that name is declared as before (one entry per declared name, which apps keep few).
   */
  readonly #declarations = new Map<string, EventCatalog>()
  /** Shared by every channel; the hub alone sets its backend (once) and `closed`. */
  readonly #context: { -readonly [K in keyof ChannelContext]: ChannelContext[K] }

  /** Names not to forget before a time (see keep). */
  readonly #kept = new Map<string, number>()
  #sweeper: NodeJS.Timeout | undefined

  private constructor (maxSubscriberQueue: number, log: FastifyBaseLogger) {
    // The backend needs the hub (its sink): it is set right after, by create().
    this.#context = {
      backend: undefined as unknown as ChannelBackend,
      log,
      maxSubscriberQueue,
      closed: false,
      counters: { replays: 0, gaps: 0 },
      claim: channel => this.#claim(channel),
      current: name => this.#channels.get(name)
    }
  }

  /** In memory by default; through Redis (connected before this resolves) when `settings.redis` is set. */
  static async create (settings: SseSettings, log: FastifyBaseLogger): Promise<ChannelHub> {
    const hub = new ChannelHub(settings.maxSubscriberQueue, log)
    const { redis, history, serialize } = settings
    if (redis === undefined) {
      hub.#context.backend = new MemoryBackend(history, settings.idempotencyWindow, serialize, hub)
    } else {
      // Loaded only here, so an app without Redis never loads the Redis backend, nor ioredis.
      const { RedisBackend } = await import('./redis/backend.js')
      hub.#context.backend = await RedisBackend.connect({
        redis,
        prefix: settings.redisPrefix,
        history,
        idempotencyWindow: settings.idempotencyWindow,
        historyTtl: settings.redisHistoryTtl,
        serialize,
        log
      }, hub)
    }
    // One timer for every channel, never one per channel; it does not keep the process alive. Checked
    // every quarter of the timeout: a channel goes within 1.25 times the timeout of its last use.
    const idleMs = settings.channelIdleTimeout
    hub.#sweeper = setInterval(() => hub.#sweep(idleMs), Math.min(Math.ceil(idleMs / 4), MAX_TIMER_DELAY)).unref()
    return hub
  }

  /** The channel of that name: the same object on every call while it is in use. */
  channel<T = unknown> (name: string, options?: ChannelOptions): Channel<T> {
    let channel = this.#channels.get(name)
    if (channel === undefined) {
      if (typeof name !== 'string' || name === '' || name.length > MAX_NAME_LENGTH) {
        throw new FST_SSE_INVALID_CHANNEL(describe(name))
      }
      channel = new SseChannel(name, this.#context)
      this.#channels.set(name, channel)
      const declared = this.#declarations.get(name)
      if (declared !== undefined) channel.declare(declared)
    }
    if (options !== undefined) {
      const events = declaredEvents(options)
      if (events !== undefined) {
        channel.declare(events)
        this.#declarations.set(name, events)
      }
    }
    return channel as SseChannel<T>
  }

  /** The channel object of that name, with what the plugin alone may do with it. */
  own (name: string): SseChannel {
    return this.channel(name) as SseChannel
  }

  /** A small record about a channel, shared by every app on the backend (see ChannelBackend). */
  createRecord (name: string, fields: Readonly<Record<string, string>>, ttlMs: number): Promise<boolean> {
    return this.#context.backend.createRecord(name, fields, ttlMs)
  }

  readRecord (name: string): Promise<Readonly<Record<string, string>> | undefined> {
    return this.#context.backend.readRecord(name)
  }

  /**
   * Never forget `name` as idle before `until` (Date.now() ms; replaces an earlier call's): a resumable
   * stream's history must live as long as its record, whoever reads it. One entry per kept name,
   * dropped by the sweep once past.
   */
  keep (name: string, until: number): void {
    this.#kept.set(name, until)
  }

  /** Subscribers by channel (those that have any), replays and gap notices so far. */
  stats (): Pick<SseStats, 'channels' | 'replays' | 'gaps'> {
    const channels: Record<string, number> = {}
    for (const [name, channel] of this.#channels) {
      if (channel.size > 0) channels[name] = channel.size
    }
    return { channels, ...this.#context.counters }
  }

  deliver (channel: string, message: ChannelMessage): void {
    this.#channels.get(channel)?.deliver(message)
  }

  gap (channel: string, lastId: string): void {
    this.#channels.get(channel)?.gap(lastId)
  }

  /** End every subscription, refuse further publishes, release the backend. */
  async close (): Promise<void> {
    clearInterval(this.#sweeper)
    this.#context.closed = true
    for (const channel of this.#channels.values()) channel.close()
    await this.#context.backend.close()
  }

  /**
   * The channel that answers for `channel.name`: the one the hub holds, or `channel` itself, held
   * again, when the name was forgotten meanwhile. Two objects of one name never both have subscribers.
   */
  #claim (channel: SseChannel): SseChannel {
    const current = this.#channels.get(channel.name)
    if (current !== undefined) return current
    this.#channels.set(channel.name, channel)
    return channel
  }

  #sweep (idleMs: number): void {
    const now = Date.now()
    for (const [name, until] of this.#kept) {
      if (until <= now) this.#kept.delete(name)
    }
    this.#context.backend.sweep?.(now)
    for (const [name, channel] of this.#channels) {
      if (!channel.idleFor(idleMs, now) || this.#kept.has(name)) continue
      this.#channels.delete(name)
      this.#context.backend.forget(name)
    }
  }
}
