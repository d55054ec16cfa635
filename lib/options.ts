import { isRedisClient, isRedisUrl, type SseRedisClient } from './channels/redis/client.js'
import { FST_SSE_INVALID_OPTION } from './errors.js'
import type { Serializer } from './frame.js'

/** Options of `app.register(ssePlugin, options)`. All are optional. */
export interface SsePluginOptions {
  /**
   * Milliseconds of silence after which a stream writes a `:` comment line, so proxies and load
   * balancers keep the connection open. `false` turns heartbeats off.
   * @default 15000
   */
  heartbeat?: number | false
  /** When set, every stream starts with a `retry:` line: the client's reconnection delay in ms. */
  retry?: number
  /**
   * Compress streams with gzip or br when the request's Accept-Encoding takes one (gzip on a tie: its
   * encoder holds about a third of br's memory), flushing every batch of frames so each event arrives
   * when it is sent. Costs an encoder per open stream (see the README for the measured memory).
   * @default false
   */
  compress?: boolean
  /**
   * Turns data that is not a string into the text of its `data:` lines.
   * @default JSON.stringify
   */
  serialize?: Serializer
  /**
   * Events each channel keeps for replay to clients that reconnect with `Last-Event-ID`.
   * `0` keeps none.
   * @default 1000
   */
  history?: number
  /**
   * Events one channel subscriber may have waiting to be written before it is ended as too slow
   * (it reconnects with `Last-Event-ID` and catches up from history).
   * @default 1000
   */
  maxSubscriberQueue?: number
  /** An ioredis client (kept open on close) or a `redis://` URL (connected and quit by the plugin). */
  redis?: SseRedisClient | string
  /**
   * Prefix of every Redis key and pub/sub channel the plugin uses.
   * @default 'sse:'
   */
  redisPrefix?: string
  /**
   * Milliseconds a channel may go without a subscriber on this app and without a publish through it
   * before this app forgets it (with the in-memory backend, its history too): channel names taken
   * from URLs or user ids never add up.
   * @default 600000 (10 minutes)
   */
  channelIdleTimeout?: number
  /**
   * Milliseconds a publish's `idempotencyKey` is remembered: a publish with the same key within
   * this window stores nothing and resolves to the first event's id.
   * @default 600000 (10 minutes)
   */
  idempotencyWindow?: number
  /**
   * Milliseconds a channel's Redis stream key lives after its last publish (refreshed by every
   * publish), so the history of channels nobody publishes on any more expires. `0`: never expires.
   * @default 86400000 (24 hours)
   */
  redisHistoryTtl?: number
  /**
   * Bytes of `Last-Event-ID` taken from a client. A longer header is treated as absent (and logged
   * once, without its value): it is never replayed from nor echoed back.
   * @default 512
   */
  maxLastEventIdLength?: number
}

/** Per-stream overrides given to `reply.sse(source, options)` or a route's `{ sse: { ... } }`. */
export type SseStreamOptions = Pick<SsePluginOptions, 'heartbeat' | 'retry' | 'serialize' | 'compress'>

export interface SseSettings {
  readonly heartbeat: number | false
  readonly retry: number | undefined
  readonly serialize: Serializer
  readonly compress: boolean
  readonly history: number
  readonly maxSubscriberQueue: number
  readonly redis: SseRedisClient | string | undefined
  readonly redisPrefix: string
  readonly maxLastEventIdLength: number
  readonly channelIdleTimeout: number
  readonly idempotencyWindow: number
  readonly redisHistoryTtl: number
}

const DEFAULT_HEARTBEAT = 15_000
const DEFAULT_HISTORY = 1000
const DEFAULT_MAX_SUBSCRIBER_QUEUE = 1000
const DEFAULT_REDIS_PREFIX = 'sse:'
const DEFAULT_MAX_LAST_EVENT_ID_LENGTH = 512
const DEFAULT_CHANNEL_IDLE_TIMEOUT = 600_000
const DEFAULT_IDEMPOTENCY_WINDOW = 600_000
const DEFAULT_REDIS_HISTORY_TTL = 86_400_000

function fail (name: string, problem: string): never {
  throw new FST_SSE_INVALID_OPTION(name, problem)
}

/** Unknown keys are rejected, to catch typos (a misspelt option would otherwise be silently ignored). */
function rejectUnknown (options: object, known: readonly string[]): void {
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) fail(key, `unknown option; the options are ${known.join(', ')}`)
  }
}

function isCount (value: unknown, min: number): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= min
}

function heartbeatOf (value: unknown, fallback: number | false): number | false {
  if (value === undefined) return fallback
  if (value === false || isCount(value, 1)) return value
  return fail('heartbeat', 'use a positive integer of milliseconds, or false to turn heartbeats off')
}

function retryOf (value: unknown, fallback: number | undefined): number | undefined {
  if (value === undefined) return fallback
  if (isCount(value, 0)) return value
  return fail('retry', 'use a non-negative integer of milliseconds')
}

function serializeOf (value: unknown, fallback: Serializer): Serializer {
  if (value === undefined) return fallback
  if (typeof value === 'function') return value as Serializer
  return fail('serialize', 'use a function (value) => string')
}

function compressOf (value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback
  if (typeof value === 'boolean') return value
  return fail('compress', 'use true or false')
}

const PLUGIN_OPTIONS = ['heartbeat', 'retry', 'serialize', 'compress', 'history', 'maxSubscriberQueue', 'redis',
  'redisPrefix', 'maxLastEventIdLength', 'channelIdleTimeout', 'idempotencyWindow', 'redisHistoryTtl']
/** Fastify reads these from every register call and passes them on to the plugin too. */
const FASTIFY_REGISTER_OPTIONS = ['prefix', 'logLevel', 'logSerializers']

/** Register options -> one validated, frozen settings object. Unknown keys are rejected, to catch typos. */
export function settingsOf (options: SsePluginOptions = {}): SseSettings {
  if (typeof options !== 'object' || options === null) fail('options', 'pass an object')
  rejectUnknown(options, [...PLUGIN_OPTIONS, ...FASTIFY_REGISTER_OPTIONS])
  const { history, maxSubscriberQueue, redis, redisPrefix, maxLastEventIdLength } = options
  if (history !== undefined && !isCount(history, 0)) fail('history', 'use a non-negative integer count of events')
  if (maxSubscriberQueue !== undefined && !isCount(maxSubscriberQueue, 1)) {
    fail('maxSubscriberQueue', 'use a positive integer count of events')
  }
  if (redis !== undefined && !isRedisClient(redis) && !isRedisUrl(redis)) {
    fail('redis', 'use an ioredis client or a redis:// or rediss:// URL')
  }
  if (redisPrefix !== undefined && (typeof redisPrefix !== 'string' || redisPrefix === '')) {
    fail('redisPrefix', 'use a non-empty string')
  }
  if (maxLastEventIdLength !== undefined && !isCount(maxLastEventIdLength, 1)) {
    fail('maxLastEventIdLength', 'use a positive integer count of bytes')
  }
  const { channelIdleTimeout, idempotencyWindow, redisHistoryTtl } = options
  if (channelIdleTimeout !== undefined && !isCount(channelIdleTimeout, 1)) {
    fail('channelIdleTimeout', 'use a positive integer of milliseconds')
  }
  if (idempotencyWindow !== undefined && !isCount(idempotencyWindow, 1)) {
    fail('idempotencyWindow', 'use a positive integer of milliseconds')
  }
  if (redisHistoryTtl !== undefined && !isCount(redisHistoryTtl, 0)) {
    fail('redisHistoryTtl', 'use a non-negative integer of milliseconds (0: never expires)')
  }
  return Object.freeze({
    heartbeat: heartbeatOf(options.heartbeat, DEFAULT_HEARTBEAT),
    retry: retryOf(options.retry, undefined),
    serialize: serializeOf(options.serialize, JSON.stringify),
    compress: compressOf(options.compress, false),
    history: history ?? DEFAULT_HISTORY,
    maxSubscriberQueue: maxSubscriberQueue ?? DEFAULT_MAX_SUBSCRIBER_QUEUE,
    redis,
    redisPrefix: redisPrefix ?? DEFAULT_REDIS_PREFIX,
    maxLastEventIdLength: maxLastEventIdLength ?? DEFAULT_MAX_LAST_EVENT_ID_LENGTH,
    channelIdleTimeout: channelIdleTimeout ?? DEFAULT_CHANNEL_IDLE_TIMEOUT,
    idempotencyWindow: idempotencyWindow ?? DEFAULT_IDEMPOTENCY_WINDOW,
    redisHistoryTtl: redisHistoryTtl ?? DEFAULT_REDIS_HISTORY_TTL
  })
}

export interface StreamSettings {
  readonly heartbeat: number | false
  readonly retry: number | undefined
  readonly serialize: Serializer
  readonly compress: boolean
}

/** The settings of one stream: the plugin's, with what `reply.sse(source, options)` overrides. */
export function streamSettingsOf (settings: StreamSettings, options: SseStreamOptions | undefined): StreamSettings {
  if (options === undefined) return settings
  if (typeof options !== 'object' || options === null) fail('reply.sse options', 'pass an object')
  rejectUnknown(options, ['heartbeat', 'retry', 'serialize', 'compress'])
  return Object.freeze({
    heartbeat: heartbeatOf(options.heartbeat, settings.heartbeat),
    retry: retryOf(options.retry, settings.retry),
    serialize: serializeOf(options.serialize, settings.serialize),
    compress: compressOf(options.compress, settings.compress)
  })
}
