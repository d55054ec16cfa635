import type { FastifyRequest } from 'fastify'
import { isRedisClient, isRedisUrl, type SseRedisClient } from './channels/redis/client.js'
import { FST_SSE_INVALID_OPTION } from './errors.js'
import type { EventCatalog } from './events/catalog.js'
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
   * Compress streams with gzip or br when the request's Accept-Encoding takes one (gzip on a tie: a
   * third of the memory per open stream), flushing every batch of frames so each event arrives when it
   * is sent. Costs an encoder per open stream (see the README for the measured memory).
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
  /**
   * Streams open on this app at once (counted until each source is finalized). A stream past it is
   * refused (see `refuseWith`). `Infinity`: no limit.
   * @default 10000
   */
  maxStreams?: number
  /** Streams one client (`clientKey`) may have open at once. @default Infinity */
  maxStreamsPerClient?: number
  /** Subscribers one channel may have on this app; a stream that would pass it is refused. @default Infinity */
  maxChannelSubscribers?: number
  /**
   * Resumable generations (`app.sse.resumable`) running on this app at once, counted until each
   * source is finalized: they run whoever reads them, so streams' limits do not count them. A start
   * past it fails with `FST_SSE_LIMIT_REACHED` (429) before anything runs. @default 1000
   */
  maxGenerations?: number
  /** Resumable generations one client (`clientKey` of the request that started them) may have running. @default Infinity */
  maxGenerationsPerClient?: number
  /**
   * Streams one client (`clientKey`) may start per `windowMs` (a sliding window): reconnect storms and
   * loops are refused before they open a source. @default false (no limit)
   */
  connectRate?: { max: number, windowMs: number } | false
  /**
   * Who a client is, for the per-client limits. The default, `request.ip`, honours Fastify's
   * `trustProxy`: behind a proxy without it, every client is the proxy.
   * @default request => request.ip
   */
  clientKey?: (request: FastifyRequest) => string
  /**
   * Milliseconds after which a stream ends (after 90 to 100% of it, at random), telling the client to
   * come back after a jittered `retry:`: clients rebalance across instances and credentials are checked
   * again. `false`: streams last as long as their source. @default false
   */
  maxLifetime?: number | false
  /**
   * Milliseconds the socket may stay full (the client reads nothing) before the stream is ended and its
   * connection cut: a frozen client never pins its source for good. `false`: no deadline.
   * @default 30000
   */
  writeTimeout?: number | false
  /**
   * How a stream refused by a limit is answered. `200` (the default) suits `EventSource`, which treats any
   * other status as fatal and never reconnects: a `200` with a jittered `retry:` and an immediate end
   * makes it come back later by itself. `429` or `503`: an `FST_SSE_LIMIT_REACHED` error, for clients
   * that read the status. Every refusal carries `Retry-After`.
   * @default 200
   */
  refuseWith?: 200 | 429 | 503
  /** Milliseconds a refused client is told to wait, plus up to as much again at random. @default 5000 */
  refusalRetry?: number
  /**
   * Answer `406` when the request's `Accept` refuses `text/event-stream`. `false` for a route that
   * decided to stream by itself (its request body asked for a stream, as LLM-style APIs do): clients
   * such as SDKs built on `fetch` often send `Accept: application/json` and read the stream anyway.
   * @default true
   */
  checkAccept?: boolean
}

/** Per-stream overrides given to `reply.sse(source, options)` or a route's `{ sse: { ... } }`. */
export interface SseStreamOptions extends Pick<SsePluginOptions, 'heartbeat' | 'retry' | 'serialize' | 'compress' |
'maxLifetime' | 'writeTimeout' | 'refuseWith' | 'refusalRetry' | 'checkAccept'> {
  /**
   * When this stream ends, as a `Date` or epoch milliseconds (a token's expiry): it ends there like at
   * `maxLifetime` (reason 'expired'), and the client comes back after a jittered `retry:`, to be
   * authenticated again. A time already past refuses to open the source.
   */
  endAt?: Date | number
}

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
  readonly maxStreams: number
  readonly maxStreamsPerClient: number
  readonly maxChannelSubscribers: number
  readonly maxGenerations: number
  readonly maxGenerationsPerClient: number
  readonly connectRate: { readonly max: number, readonly windowMs: number } | false
  readonly clientKey: (request: FastifyRequest) => string
  readonly maxLifetime: number | false
  readonly writeTimeout: number | false
  readonly refuseWith: 200 | 429 | 503
  readonly refusalRetry: number
  readonly checkAccept: boolean
}

const DEFAULT_HEARTBEAT = 15_000
const DEFAULT_HISTORY = 1000
const DEFAULT_MAX_GENERATIONS = 1000
const DEFAULT_MAX_SUBSCRIBER_QUEUE = 1000
const DEFAULT_REDIS_PREFIX = 'sse:'
const DEFAULT_MAX_LAST_EVENT_ID_LENGTH = 512
const DEFAULT_CHANNEL_IDLE_TIMEOUT = 600_000
const DEFAULT_IDEMPOTENCY_WINDOW = 600_000
const DEFAULT_REDIS_HISTORY_TTL = 86_400_000
const DEFAULT_MAX_STREAMS = 10_000
const DEFAULT_WRITE_TIMEOUT = 30_000
const DEFAULT_REFUSAL_RETRY = 5000

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

/** Node runs a longer timer delay after 1 ms: a delay a timer takes at once is at most this. */
const MAX_TIMER_DELAY = 2 ** 31 - 1

function isDelay (value: unknown): value is number {
  return isCount(value, 1) && value <= MAX_TIMER_DELAY
}

function heartbeatOf (value: unknown, fallback: number | false): number | false {
  if (value === undefined) return fallback
  if (value === false || isDelay(value)) return value
  return fail('heartbeat', `use a positive integer of milliseconds up to ${MAX_TIMER_DELAY}, or false to turn heartbeats off`)
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

function booleanOf (name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback
  if (typeof value === 'boolean') return value
  return fail(name, 'use true or false')
}

function millisOrOff (name: string, value: unknown, fallback: number | false): number | false {
  if (value === undefined) return fallback
  if (value === false || isCount(value, 1)) return value
  return fail(name, 'use a positive integer of milliseconds, or false for none')
}

function delayOrOff (name: string, value: unknown, fallback: number | false): number | false {
  if (value === undefined) return fallback
  if (value === false || isDelay(value)) return value
  return fail(name, `use a positive integer of milliseconds up to ${MAX_TIMER_DELAY}, or false for none`)
}

function limitOf (name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback
  if (value === Infinity || isCount(value, 1)) return value
  return fail(name, 'use a positive integer, or Infinity for no limit')
}

function refuseWithOf (value: unknown, fallback: 200 | 429 | 503): 200 | 429 | 503 {
  if (value === undefined) return fallback
  if (value === 200 || value === 429 || value === 503) return value
  return fail('refuseWith', 'use 200 (EventSource clients come back by themselves), 429 or 503')
}

function refusalRetryOf (value: unknown, fallback: number): number {
  if (value === undefined) return fallback
  if (isCount(value, 1)) return value
  return fail('refusalRetry', 'use a positive integer of milliseconds')
}

function connectRateOf (value: unknown): SseSettings['connectRate'] {
  if (value === undefined || value === false) return false
  const rate = value as { max?: unknown, windowMs?: unknown }
  if (typeof value === 'object' && value !== null && isCount(rate.max, 1) && isCount(rate.windowMs, 1)) {
    return Object.freeze({ max: rate.max, windowMs: rate.windowMs })
  }
  return fail('connectRate', 'use { max, windowMs } with positive integers, or false for no limit')
}

function clientKeyOf (value: unknown): SseSettings['clientKey'] {
  if (value === undefined) return ipOf
  if (typeof value === 'function') return value as SseSettings['clientKey']
  return fail('clientKey', 'use a function (request) => string')
}

function ipOf (request: FastifyRequest): string {
  return request.ip
}

const STREAM_OPTIONS = ['heartbeat', 'retry', 'serialize', 'compress', 'maxLifetime', 'writeTimeout', 'refuseWith', 'refusalRetry',
  'checkAccept']
const PLUGIN_OPTIONS = [...STREAM_OPTIONS, 'history', 'maxSubscriberQueue', 'redis', 'redisPrefix',
  'maxLastEventIdLength', 'channelIdleTimeout', 'idempotencyWindow', 'redisHistoryTtl', 'maxStreams',
  'maxStreamsPerClient', 'maxChannelSubscribers', 'connectRate', 'clientKey', 'maxGenerations', 'maxGenerationsPerClient']
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
    ...streamSettingsFrom(options, {
      heartbeat: DEFAULT_HEARTBEAT,
      retry: undefined,
      serialize: JSON.stringify,
      compress: false,
      maxLifetime: false,
      writeTimeout: DEFAULT_WRITE_TIMEOUT,
      refuseWith: 200,
      refusalRetry: DEFAULT_REFUSAL_RETRY,
      checkAccept: true
    }),
    history: history ?? DEFAULT_HISTORY,
    maxSubscriberQueue: maxSubscriberQueue ?? DEFAULT_MAX_SUBSCRIBER_QUEUE,
    redis,
    redisPrefix: redisPrefix ?? DEFAULT_REDIS_PREFIX,
    maxLastEventIdLength: maxLastEventIdLength ?? DEFAULT_MAX_LAST_EVENT_ID_LENGTH,
    channelIdleTimeout: channelIdleTimeout ?? DEFAULT_CHANNEL_IDLE_TIMEOUT,
    idempotencyWindow: idempotencyWindow ?? DEFAULT_IDEMPOTENCY_WINDOW,
    redisHistoryTtl: redisHistoryTtl ?? DEFAULT_REDIS_HISTORY_TTL,
    maxStreams: limitOf('maxStreams', options.maxStreams, DEFAULT_MAX_STREAMS),
    maxStreamsPerClient: limitOf('maxStreamsPerClient', options.maxStreamsPerClient, Infinity),
    maxChannelSubscribers: limitOf('maxChannelSubscribers', options.maxChannelSubscribers, Infinity),
    maxGenerations: limitOf('maxGenerations', options.maxGenerations, DEFAULT_MAX_GENERATIONS),
    maxGenerationsPerClient: limitOf('maxGenerationsPerClient', options.maxGenerationsPerClient, Infinity),
    connectRate: connectRateOf(options.connectRate),
    clientKey: clientKeyOf(options.clientKey)
  })
}

export interface StreamSettings {
  readonly heartbeat: number | false
  readonly retry: number | undefined
  readonly serialize: Serializer
  readonly compress: boolean
  readonly maxLifetime: number | false
  readonly writeTimeout: number | false
  readonly refuseWith: 200 | 429 | 503
  readonly refusalRetry: number
  readonly checkAccept: boolean
  /** The route's declared events (`sseEvents()` in its response schema): checked and serialized by them. */
  readonly events?: EventCatalog | undefined
}

function streamSettingsFrom (options: SseStreamOptions, fallback: StreamSettings): StreamSettings {
  return {
    heartbeat: heartbeatOf(options.heartbeat, fallback.heartbeat),
    retry: retryOf(options.retry, fallback.retry),
    serialize: serializeOf(options.serialize, fallback.serialize),
    compress: booleanOf('compress', options.compress, fallback.compress),
    maxLifetime: millisOrOff('maxLifetime', options.maxLifetime, fallback.maxLifetime),
    writeTimeout: delayOrOff('writeTimeout', options.writeTimeout, fallback.writeTimeout),
    refuseWith: refuseWithOf(options.refuseWith, fallback.refuseWith),
    refusalRetry: refusalRetryOf(options.refusalRetry, fallback.refusalRetry),
    checkAccept: booleanOf('checkAccept', options.checkAccept, fallback.checkAccept),
    // A route's declaration, kept under a stream's own options (a stream cannot declare its own).
    ...(fallback.events === undefined ? {} : { events: fallback.events })
  }
}

/** The settings of one stream: the plugin's, with what `reply.sse(source, options)` overrides. */
export function streamSettingsOf (settings: StreamSettings, options: SseStreamOptions | undefined): StreamSettings {
  if (options === undefined) return settings
  if (typeof options !== 'object' || options === null) fail('reply.sse options', 'pass an object')
  rejectUnknown(options, [...STREAM_OPTIONS, 'endAt'])
  return Object.freeze(streamSettingsFrom(options, settings))
}

/** The settings of a route's streams (`{ sse: { ... } }`): stream options but `endAt`, a stream's own. */
export function routeSettingsOf (settings: StreamSettings, options: SseStreamOptions): StreamSettings {
  if (typeof options === 'object' && options !== null && 'endAt' in options) {
    fail('endAt', 'it is a stream\'s own end (a credential\'s expiry): pass it to reply.sse(source, { endAt })')
  }
  return streamSettingsOf(settings, options)
}

/** Epoch milliseconds of a stream's `endAt`, or undefined when it has none. */
export function endAtOf (options: SseStreamOptions | undefined): number | undefined {
  const endAt = options?.endAt
  if (endAt === undefined) return undefined
  const ms = endAt instanceof Date ? endAt.getTime() : endAt
  if (typeof ms === 'number' && Number.isFinite(ms)) return ms
  return fail('endAt', 'use a Date or epoch milliseconds')
}
