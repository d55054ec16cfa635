import type { FastifyBaseLogger } from 'fastify'
import { describe } from '../describe.js'
import { FST_SSE_INVALID_CHANNEL } from '../errors.js'
import type { SseSettings } from '../options.js'
import type { Channel, ChannelMessage } from '../types.js'
import type { BackendSink, ChannelBackend } from './backend.js'
import { SseChannel, type ChannelContext } from './channel.js'
import { MemoryBackend } from './memory-backend.js'

const MAX_NAME_LENGTH = 200

/** Every channel of one app, by name, and the backend they share. */
export class ChannelHub implements BackendSink {
  readonly #channels = new Map<string, SseChannel>()
  readonly #context: { backend: ChannelBackend, log: FastifyBaseLogger, maxSubscriberQueue: number, closed: boolean }

  private constructor (maxSubscriberQueue: number, log: FastifyBaseLogger) {
    // The backend needs the hub (its sink): it is set right after, by create().
    this.#context = { backend: undefined as unknown as ChannelBackend, log, maxSubscriberQueue, closed: false }
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
    return hub
  }

  /** The channel of that name: the same object on every call. */
  channel<T = unknown> (name: string): Channel<T> {
    let channel = this.#channels.get(name)
    if (channel === undefined) {
      if (typeof name !== 'string' || name === '' || name.length > MAX_NAME_LENGTH) {
        throw new FST_SSE_INVALID_CHANNEL(describe(name))
      }
      channel = new SseChannel(name, this.#context as ChannelContext)
      this.#channels.set(name, channel)
    }
    return channel as SseChannel<T>
  }

  deliver (channel: string, message: ChannelMessage): void {
    this.#channels.get(channel)?.deliver(message)
  }

  gap (channel: string, lastId: string): void {
    this.#channels.get(channel)?.gap(lastId)
  }

  /** End every subscription, refuse further publishes, release the backend. */
  async close (): Promise<void> {
    this.#context.closed = true
    for (const channel of this.#channels.values()) channel.close()
    await this.#context.backend.close()
  }
}
