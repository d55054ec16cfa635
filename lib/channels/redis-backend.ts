import type { FastifyBaseLogger } from 'fastify'
import { FST_SSE_BACKEND_UNAVAILABLE } from '../errors.js'
import { messageFrame, prepare, type Serializer } from '../frame.js'
import type { SseMessage } from '../message.js'
import { withTimeout } from '../timeout.js'
import type { ChannelMessage } from '../types.js'
import { compareIds, ID_PATTERN, type BackendSink, type ChannelBackend, type Replay } from './backend.js'
import type { SseRedisClient } from './redis-client.js'

// The only module that knows Redis. Each channel is one Redis stream, `<prefix><name>`: its history.
// Every entry has two fields, `p` (the id of the entry before it; '' for the first of a stream) and
// `b` (the body). A publish appends the entry and announces `<id> <prev> <body>` on the pub/sub
// channel of the same name, in one script. An app subscribes to the channels it has subscribers for,
// on one connection; `prev` lets it tell a continuous feed from one that missed events (a dropped
// connection), which it then fetches from the stream. Two connections per app, whatever the load.

/**
 * Gives the entry its id, keeps about `ARGV[1]` entries (exactly 0 for 0), announces it. With an
 * idempotency key (`KEYS[2]`, remembered `ARGV[3]` ms; '0' without one): a key already set stores
 * nothing and answers the id it holds.
 */
const PUBLISH_SCRIPT = `
if ARGV[3] ~= '0' then
  local first = redis.call('GET', KEYS[2])
  if first then return first end
end
local prev = ''
if redis.call('EXISTS', KEYS[1]) == 1 then
  local info = redis.call('XINFO', 'STREAM', KEYS[1])
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then prev = info[i + 1] break end
  end
end
local id
if ARGV[1] == '0' then
  id = redis.call('XADD', KEYS[1], 'MAXLEN', '0', '*', 'p', prev, 'b', ARGV[2])
else
  id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'p', prev, 'b', ARGV[2])
end
redis.call('PUBLISH', KEYS[1], id .. ' ' .. prev .. ' ' .. ARGV[2])
if ARGV[3] ~= '0' then redis.call('SET', KEYS[2], id, 'PX', ARGV[3]) end
return id
`

/**
 * `{ last id the stream gave ('' without a stream), entries newest first }`: at most `ARGV[2]` entries
 * after `ARGV[1]`, or the newest ones when none follow it and it is not the last id (unknown, or ahead).
 */
const REPLAY_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 0 then return { '', {} } end
local last = ''
local info = redis.call('XINFO', 'STREAM', KEYS[1])
for i = 1, #info, 2 do
  if info[i] == 'last-generated-id' then last = info[i + 1] break end
end
local count = tonumber(ARGV[2])
if count == 0 then return { last, {} } end
local entries = {}
if ARGV[1] ~= '' then entries = redis.call('XREVRANGE', KEYS[1], '+', '(' .. ARGV[1], 'COUNT', count) end
if #entries == 0 and ARGV[1] ~= last then entries = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', count) end
return { last, entries }
`

/** A publish, a replay or a catch-up that Redis has not answered by then fails (Redis may be hung). */
const COMMAND_TIMEOUT_MS = 2000
/** How long `app.close()` waits for Redis to acknowledge QUIT before dropping the connections. */
const QUIT_TIMEOUT_MS = 1000
/** How long registration waits for Redis. */
const CONNECT_TIMEOUT_MS = 10_000
/** How long a catch-up after a reconnection waits for Redis to answer. */
const RECONNECT_WAIT_MS = 10_000

type RawEntry = [id: string, fields: string[]]

interface ScriptedRedis extends SseRedisClient {
  ssePublish (key: string, idempotencyKey: string, maxLength: number, body: string, window: number): Promise<string>
  sseReplay (key: string, after: string, count: number): Promise<[last: string, entries: RawEntry[]]>
}

// The body is a JSON array: [kind, text, event, retry, comment], null for what is absent.
const NO_DATA = 0
/** The data was a string: it went as it was. */
const TEXT = 1
/** The data went through a custom `serialize`: apps receive that text. */
const SERIALIZED = 2
/** The data went through JSON.stringify: apps receive it back through JSON.parse. */
const JSON_TEXT = 3
type Body = [kind: number, text: string | null, event: string | null, retry: number | null, comment: string | null]

/** One channel this app has subscribers on. */
interface Feed {
  readonly name: string
  readonly key: string
  /** The last event delivered to this app's subscribers; null before the first. */
  last: string | null
  /** Announcements held while missed events are fetched from the stream; null when none are. */
  held: string[] | null
  /** Settles once Redis has acknowledged the subscription: every later event reaches this app. */
  ready: Promise<unknown>
}

export interface RedisBackendOptions {
  /** An ioredis client (used for commands, never closed here) or a URL (connected and closed here). */
  readonly redis: SseRedisClient | string
  readonly prefix: string
  readonly history: number
  readonly idempotencyWindow: number
  readonly serialize: Serializer
  readonly log: FastifyBaseLogger
}

function bounded<T> (promise: Promise<T>, ms: number): Promise<T> {
  return withTimeout(promise, ms, () => { throw new Error(`Redis did not answer within ${ms} ms`) })
}

/** Resolves when `client` is ready; rejects on its first error (a wrong URL fails registration) or after `ms`. */
async function connected (client: SseRedisClient, ms: number): Promise<void> {
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

function ignore (): void {}

function quit (client: SseRedisClient): Promise<unknown> | undefined {
  if (client.status !== 'ready') {
    client.disconnect()
    return
  }
  return bounded(client.quit(), QUIT_TIMEOUT_MS).catch(() => client.disconnect())
}

function unavailable (err: unknown): Error {
  return new FST_SSE_BACKEND_UNAVAILABLE((err as Error).message, { cause: err })
}

/** What CLIENT LIST shows for the connections the plugin opens (a name may not contain spaces). */
function connectionNameOf (prefix: string): string {
  return 'fastify-sse-stream:' + prefix.replace(/[^\x21-\x7e]/g, '_')
}

function withScripts (client: SseRedisClient): ScriptedRedis {
  client.defineCommand('ssePublish', { numberOfKeys: 2, lua: PUBLISH_SCRIPT })
  client.defineCommand('sseReplay', { numberOfKeys: 1, lua: REPLAY_SCRIPT })
  return client as ScriptedRedis
}

/** `<id> <prev> <body>` -> its parts; throws on anything else. */
function parseAnnouncement (payload: string): [id: string, prev: string, body: string] {
  const space = payload.indexOf(' ')
  const next = payload.indexOf(' ', space + 1)
  const id = payload.slice(0, space)
  if (space === -1 || next === -1 || !ID_PATTERN.test(id)) throw new Error('not an announcement of this plugin')
  return [id, payload.slice(space + 1, next), payload.slice(next + 1)]
}

export class RedisBackend implements ChannelBackend {
  readonly #command: ScriptedRedis
  readonly #ownsCommand: boolean
  readonly #subscriber: SseRedisClient
  readonly #prefix: string
  readonly #history: number
  readonly #idempotencyWindow: number
  readonly #serialize: Serializer
  readonly #json: boolean
  readonly #log: FastifyBaseLogger
  readonly #sink: BackendSink
  /** Watched channels, by stream key. */
  readonly #feeds = new Map<string, Feed>()
  #state: 'connecting' | 'up' | 'down' = 'connecting'
  #closed = false

  private constructor (command: SseRedisClient, ownsCommand: boolean, options: RedisBackendOptions, sink: BackendSink) {
    this.#command = withScripts(command)
    this.#ownsCommand = ownsCommand
    this.#subscriber = command.duplicate({ lazyConnect: true, connectionName: connectionNameOf(options.prefix) })
    this.#prefix = options.prefix
    this.#history = options.history
    this.#idempotencyWindow = options.idempotencyWindow
    this.#serialize = options.serialize
    this.#json = options.serialize === JSON.stringify
    this.#log = options.log
    this.#sink = sink
    // A client passed in keeps its owner's error handling; the connections opened here report to the log.
    if (ownsCommand) command.on('error', this.#onError)
    this.#subscriber.on('error', this.#onError)
    this.#subscriber.on('ready', this.#onReady)
    this.#subscriber.on('message', this.#onMessage)
  }

  /** Open what the backend needs; rejects (having closed what it opened) when Redis cannot be reached. */
  static async connect (options: RedisBackendOptions, sink: BackendSink): Promise<RedisBackend> {
    const { redis } = options
    // Loaded on demand: ioredis is an optional peer dependency.
    const command = typeof redis === 'string'
      ? new (await import('ioredis')).Redis(redis, { lazyConnect: true, connectionName: connectionNameOf(options.prefix) })
      : redis
    const backend = new RedisBackend(command, typeof redis === 'string', options, sink)
    try {
      await Promise.all([connected(command, CONNECT_TIMEOUT_MS), connected(backend.#subscriber, CONNECT_TIMEOUT_MS)])
    } catch (err) {
      await backend.close()
      throw unavailable(err)
    }
    backend.#state = 'up'
    return backend
  }

  async publish (channel: string, message: SseMessage, idempotencyKey?: string): Promise<string> {
    const body = this.#encode(message)
    const key = this.#prefix + channel
    const window = idempotencyKey === undefined ? 0 : this.#idempotencyWindow
    return this.#call(() => this.#command.ssePublish(key, key + ':idempotency:' + (idempotencyKey ?? ''),
      this.#history, body, window))
  }

  async replay (channel: string, lastEventId: string): Promise<Replay> {
    const key = this.#prefix + channel
    const valid = ID_PATTERN.test(lastEventId)
    const [last, raw] = await this.#call(async () => {
      // Once this app's subscription is acknowledged, every event after the replay reaches it live.
      await this.#feeds.get(key)?.ready
      return this.#command.sseReplay(key, valid ? lastEventId : '', this.#history)
    })
    const entries = raw.reverse()
    const messages = entries.map(([id, fields]) => this.#decode(id, fields[3]!))
    const gap = !valid || (entries.length > 0 ? entries[0]![1][1] !== lastEventId : last !== lastEventId)
    return { gap, messages }
  }

  watch (channel: string): void {
    const key = this.#prefix + channel
    const ready = this.#subscriber.subscribe(key).catch((err: unknown) => {
      // When closing, an unanswered subscription is simply dropped.
      if (!this.#closed) this.#log.warn({ err, channel }, 'sse channel could not subscribe in Redis')
    })
    this.#feeds.set(key, { name: channel, key, last: null, held: null, ready })
  }

  unwatch (channel: string): void {
    const key = this.#prefix + channel
    this.#feeds.delete(key)
    // Fails only when the connection is closing, and then nothing is subscribed any more anyway.
    this.#subscriber.unsubscribe(key).catch(ignore)
  }

  // The history lives in Redis, under its own expiry: nothing is kept here for a channel nobody watches.
  forget (): void {}

  async close (): Promise<void> {
    this.#closed = true
    this.#subscriber.removeListener('message', this.#onMessage)
    this.#feeds.clear()
    await Promise.all([quit(this.#subscriber), this.#ownsCommand ? quit(this.#command) : undefined])
  }

  /** Run a command now, bounded in time; any failure is FST_SSE_BACKEND_UNAVAILABLE. Never queued offline. */
  async #call<T> (run: () => Promise<T>): Promise<T> {
    const { status } = this.#command
    if (status !== 'ready') throw new FST_SSE_BACKEND_UNAVAILABLE(`the Redis connection is ${status}`)
    // The other connection already saw Redis go: a command sent now could sit in ioredis until Redis
    // is back and run then, after this caller was told it failed.
    if (this.#state === 'down') throw new FST_SSE_BACKEND_UNAVAILABLE('the Redis connection is reconnecting')
    try {
      return await bounded(run(), COMMAND_TIMEOUT_MS)
    } catch (err) {
      throw unavailable(err)
    }
  }

  /**
   * Validate every field exactly as the stream would (same errors), and serialize the data once:
   * that text is what crosses Redis, and every app frames it as it is.
   */
  #encode (message: SseMessage): string {
    let text: string | null = null
    messageFrame(message, value => (text = this.#serialize(value)))
    const { data } = message
    const kind = data === undefined ? NO_DATA : typeof data === 'string' ? TEXT : this.#json ? JSON_TEXT : SERIALIZED
    const body: Body = [kind, kind === TEXT ? data as string : text, message.event ?? null,
      message.retry ?? null, message.comment ?? null]
    return JSON.stringify(body)
  }

  /** A stored event as a message framed once for every subscriber of this app, without serializing again. */
  #decode (id: string, body: string): ChannelMessage {
    const [kind, text, event, retry, comment] = JSON.parse(body) as Body
    const message: SseMessage = { id }
    if (event !== null) message.event = event
    if (retry !== null) message.retry = retry
    if (comment !== null) message.comment = comment
    if (kind === JSON_TEXT) {
      const value: unknown = JSON.parse(text!)
      // A value whose JSON is a string (a Date) keeps that JSON text: it is what the frame must carry.
      message.data = typeof value === 'string' ? text : value
    } else if (kind !== NO_DATA) {
      message.data = text
    }
    return prepare(message, () => text!) as ChannelMessage
  }

  #onMessage = (key: string, payload: string): void => {
    const feed = this.#feeds.get(key)
    // Only by a race no test can order: an announcement in flight while this app's last subscriber left.
    /* c8 ignore next */
    if (feed === undefined) return
    if (feed.held !== null) feed.held.push(payload)
    else this.#accept(feed, payload)
  }

  #accept (feed: Feed, payload: string): void {
    let id: string, prev: string, body: string
    try {
      [id, prev, body] = parseAnnouncement(payload)
    } catch (err) {
      this.#log.warn({ err, channel: feed.name }, 'sse channel ignored a Redis message it cannot read')
      return
    }
    const last = feed.last
    if (last !== null) {
      if (compareIds(id, last) <= 0) return
      // `prev` '' starts a stream: Redis restarted without its data, and this is what came after.
      if (prev !== last && prev !== '') {
        feed.held = [payload]
        this.#catchUp(feed, false)
        return
      }
    }
    this.#deliver(feed, id, body)
  }

  #deliver (feed: Feed, id: string, body: string): void {
    feed.last = id
    let message: ChannelMessage
    try {
      message = this.#decode(id, body)
    } catch (err) {
      this.#log.warn({ err, channel: feed.name, id }, 'sse channel ignored a Redis event it cannot read')
      return
    }
    this.#sink.deliver(feed.name, message)
  }

  /** Fetch what this app missed after `feed.last` from the stream, then go on with what was held. */
  async #catchUp (feed: Feed, afterReconnect: boolean): Promise<void> {
    const after = feed.last as string
    let entries: RawEntry[] = []
    let gap: boolean
    try {
      // The answer to a PING sent now comes after ioredis's resubscription: from then on nothing is missed.
      if (afterReconnect) await bounded(this.#subscriber.ping(), COMMAND_TIMEOUT_MS)
      // The command connection may still be reconnecting: ioredis sends this once it is back.
      const [last, raw] = await bounded(this.#command.sseReplay(feed.key, after, this.#history), RECONNECT_WAIT_MS)
      entries = raw.reverse()
      const prev = entries[0]?.[1][1]
      gap = prev === undefined ? last !== '' && last !== after : prev !== after && prev !== ''
    } catch (err) {
      gap = true
      this.#log.warn({ err, channel: feed.name }, 'sse channel could not fetch the events it missed from Redis')
    }
    // Every subscriber of this app left meanwhile: nothing to deliver to.
    if (this.#feeds.get(feed.key) !== feed) return
    if (gap) this.#sink.gap(feed.name, after)
    for (const [id, fields] of entries) {
      if (compareIds(id, feed.last as string) > 0) this.#deliver(feed, id, fields[3]!)
    }
    // After a gap with nothing fetched, what comes next is taken as it is.
    if (gap && entries.length === 0) feed.last = null
    const held = feed.held as string[]
    feed.held = null
    for (const payload of held) this.#accept(feed, payload)
  }

  #onError = (err: Error): void => {
    if (this.#state !== 'up') return
    this.#state = 'down'
    this.#log.warn({ err }, 'sse lost its Redis connection; reconnecting (publish and replay fail meanwhile)')
  }

  #onReady = (): void => {
    if (this.#state === 'down') {
      this.#state = 'up'
      this.#log.info('sse Redis connection is back; catching up')
    }
    for (const feed of this.#feeds.values()) {
      if (feed.last !== null && feed.held === null) {
        feed.held = []
        this.#catchUp(feed, true)
      }
    }
  }
}
