import { randomUUID } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import { FST_SSE_BACKEND_UNAVAILABLE, FST_SSE_PUBLISH_OUTCOME_UNKNOWN } from '../../errors.js'
import type { Serializer } from '../../frame.js'
import type { SseMessage } from '../../message.js'
import type { ChannelMessage } from '../../types.js'
import type { BackendSink, ChannelBackend, InternalPublish, Replay } from '../backend.js'
import type { SseRedisClient } from './client.js'
import { BodyCodec, isMarker, missesEvents, readEntry, type Entry } from './codec.js'
import { bounded, connected, connectionNameOf, duplicateSubscriber, ignore, quit, RedisClock, TimedOut } from './connection.js'
import { Feeds } from './feeds.js'
import { RedisNames } from './names.js'
import { withScripts, type ScriptedRedis } from './scripts.js'

// The channel backend on Redis: the only code that loads ioredis. A channel is a Redis stream (its
// history, every entry naming the one before it); a publish appends and announces in one script;
// each app subscribes to the channels it has subscribers for (see feeds.ts). Two connections per
// app (per master, on a Cluster), whatever the load.

/** A publish or a replay that Redis has not answered by then fails (Redis may be hung). */
const COMMAND_TIMEOUT_MS = 2000
/** How long one publish call's own key is kept: past its deadline, a late copy is refused anyway. */
const ATTEMPT_WINDOW_MS = 5 * COMMAND_TIMEOUT_MS
/** How long `app.close()` waits for Redis to acknowledge QUIT before dropping the connections. */
const QUIT_TIMEOUT_MS = 1000
/** How long registration waits for Redis. */
const CONNECT_TIMEOUT_MS = 10_000
/** How long a feed's catch-up waits for Redis (the command connection may still be reconnecting). */
const CATCH_UP_TIMEOUT_MS = 10_000

export interface RedisBackendOptions {
  /** An ioredis client (used for commands, never closed here) or a URL (connected and closed here). */
  readonly redis: SseRedisClient | string
  readonly prefix: string
  readonly history: number
  readonly idempotencyWindow: number
  readonly historyTtl: number
  readonly serialize: Serializer
  readonly log: FastifyBaseLogger
}

function unavailable (err: unknown): Error {
  return new FST_SSE_BACKEND_UNAVAILABLE((err as Error).message, { cause: err })
}

export class RedisBackend implements ChannelBackend {
  readonly #command: ScriptedRedis
  readonly #ownsCommand: boolean
  readonly #subscriber: SseRedisClient
  readonly #sharded: boolean
  /** How an announcement is sent: a Cluster's go to their slot's shard. */
  readonly #publishCommand: 'PUBLISH' | 'SPUBLISH'
  readonly #names: RedisNames
  readonly #codec: BodyCodec
  readonly #feeds: Feeds
  readonly #clock = new RedisClock()
  readonly #options: RedisBackendOptions
  /** Connections that closed and are not ready again: publish and replay fail at once meanwhile. */
  readonly #down = new Set<SseRedisClient>()
  /**
   * Replays in flight, by stream, id and the channel's feed mark: a reconnect storm asking the same
   * thing asks Redis once, but a subscriber never joins a replay sent before its feed handed out an
   * event (it would have neither: not subscribed yet to get it live, and the replay read before it).
   */
  readonly #replays = new Map<string, Promise<Replay>>()
  /** What the backend listens to on each connection, removed on close: a client passed in outlives it. */
  readonly #listeners = new Map<SseRedisClient, { close: () => void, ready: () => void }>()
  /** Only 'up' logs a loss: not while connecting, not after close (an owned connection may still err). */
  #state: 'connecting' | 'up' | 'down' | 'closed' = 'connecting'

  private constructor (command: SseRedisClient, ownsCommand: boolean, options: RedisBackendOptions, sink: BackendSink) {
    this.#command = withScripts(command)
    this.#ownsCommand = ownsCommand
    this.#options = options
    this.#sharded = command.isCluster === true
    this.#publishCommand = this.#sharded ? 'SPUBLISH' : 'PUBLISH'
    this.#subscriber = duplicateSubscriber(command, options.prefix)
    this.#names = new RedisNames(options.prefix, command)
    this.#codec = new BodyCodec(options.serialize)
    this.#feeds = new Feeds({
      // Never later than now: an event published just before is delivered rather than one just after missed.
      now: () => this.#clock.earliestNow(),
      available: () => this.#available(),
      position: (stream, since) => since === null
        ? this.#read(stream, '', 0).then(([last]) => last)
        : bounded(this.#command.ssePosition(stream, since), CATCH_UP_TIMEOUT_MS),
      // A history of 0 still keeps the newest entry: what tells a feed whether it missed anything.
      fetch: (stream, after) => this.#read(stream, after, Math.max(options.history, 1)),
      subscribe: announcements => this.#subscribe(announcements),
      unsubscribe: announcement => this.#unsubscribe(announcement)
    }, this.#names, this.#codec, sink, options.log)
    // A client passed in keeps its owner's error handling; the connections opened here report to the log.
    if (ownsCommand) command.on('error', this.#onLost(command))
    if (!this.#sharded) this.#subscriber.on('error', this.#onLost(this.#subscriber))
    else this.#subscriber.on('error', ignore).on('ready', () => this.#feeds.resubscribe())
    // A sharded subscriber (a Cluster of its own) reconnects node by node and may never say 'ready'
    // again after one master restarts: only the command client tells whether commands can run.
    for (const client of this.#sharded ? [command] : [command, this.#subscriber]) {
      const listeners = { close: this.#onLost(client), ready: this.#onReady(client) }
      client.on('close', listeners.close).on('ready', listeners.ready)
      this.#listeners.set(client, listeners)
    }
    this.#subscriber.on(this.#sharded ? 'smessage' : 'message', this.#onMessage)
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
      await bounded(backend.#clock.sync(command), CONNECT_TIMEOUT_MS)
    } catch (err) {
      await backend.close()
      throw unavailable(err)
    }
    backend.#state = 'up'
    return backend
  }

  async publish (channel: string, message: SseMessage, idempotencyKey?: string, serialize?: Serializer,
    internal?: InternalPublish): Promise<string> {
    const body = this.#codec.encode(message, serialize)
    const { history, idempotencyWindow, historyTtl } = this.#options
    const names = this.#names
    this.#ready()
    // Without a key of the caller's, a key of this call: ioredis sends a command again after a
    // reconnect (a client passed in resends unfulfilled commands), and the copy must store nothing.
    const [key, window] = idempotencyKey === undefined
      ? [names.attempt(channel, internal?.attempt ?? randomUUID()), ATTEMPT_WINDOW_MS]
      : [names.idempotency(channel, idempotencyKey), idempotencyWindow]
    let id: string | null
    try {
      const stream = names.stream(channel)
      const command = this.#publishCommand
      const deadline = this.#clock.deadline(COMMAND_TIMEOUT_MS)
      id = await bounded(internal?.recordEnd === undefined
        ? this.#command.ssePublish(stream, key, history, body, window, historyTtl, names.announcement(channel), command, deadline)
        : this.#command.sseRecordEnd(stream, key, names.record(channel), history, body, window, historyTtl,
          names.announcement(channel), command, deadline, internal.recordEnd),
      COMMAND_TIMEOUT_MS)
    } catch (err) {
      // Sent but unanswered: it may have run. The script's deadline makes a late run store nothing.
      if (err instanceof TimedOut) throw new FST_SSE_PUBLISH_OUTCOME_UNKNOWN(err.message, { cause: err })
      throw unavailable(err)
    }
    // Only when Redis' clock moved against the offset measured at connect: no test can order it.
    /* c8 ignore next */
    if (id === null) throw new FST_SSE_BACKEND_UNAVAILABLE('Redis ran the publish after its deadline and stored nothing')
    return id
  }

  replay (channel: string, lastEventId: string): Promise<Replay> {
    const stream = this.#names.stream(channel)
    const key = stream + ' ' + lastEventId + ' ' + this.#feeds.mark(channel)
    let replay = this.#replays.get(key)
    if (replay === undefined) {
      replay = this.#replay(stream, lastEventId).finally(() => this.#replays.delete(key))
      this.#replays.set(key, replay)
    }
    return replay
  }

  async position (channel: string): Promise<string> {
    this.#ready()
    try {
      const placing = this.#command.ssePlace(this.#names.stream(channel), this.#options.historyTtl,
        this.#names.announcement(channel), this.#publishCommand)
      return await bounded(placing, COMMAND_TIMEOUT_MS)
    } catch (err) {
      throw unavailable(err)
    }
  }

  watch (channel: string): void {
    this.#feeds.watch(channel)
  }

  unwatch (channel: string): void {
    this.#feeds.unwatch(channel)
  }

  // The history lives in Redis, under its own expiry: nothing is kept here for a channel nobody watches.
  forget (): void {}

  async createRecord (channel: string, fields: Readonly<Record<string, string>>, ttlMs: number): Promise<boolean> {
    this.#ready()
    const key = this.#names.record(channel)
    try {
      return await bounded(this.#command.sseCreateRecord(key, ttlMs, ...Object.entries(fields).flat()), COMMAND_TIMEOUT_MS) === 1
    } catch (err) {
      throw unavailable(err)
    }
  }

  async readRecord (channel: string): Promise<Readonly<Record<string, string>> | undefined> {
    this.#ready()
    let fields: Record<string, string>
    try {
      fields = await bounded(this.#command.hgetall(this.#names.record(channel)), COMMAND_TIMEOUT_MS)
    } catch (err) {
      throw unavailable(err)
    }
    // HGETALL answers {} for a record that does not exist (never made, or expired).
    return Object.keys(fields).length === 0 ? undefined : fields
  }

  async close (): Promise<void> {
    this.#state = 'closed'
    this.#subscriber.removeListener(this.#sharded ? 'smessage' : 'message', this.#onMessage)
    for (const [client, { close, ready }] of this.#listeners) client.removeListener('close', close).removeListener('ready', ready)
    this.#feeds.clear()
    await Promise.all([quit(this.#subscriber, QUIT_TIMEOUT_MS), this.#ownsCommand ? quit(this.#command, QUIT_TIMEOUT_MS) : undefined])
  }

  async #replay (stream: string, after: string): Promise<Replay> {
    this.#ready()
    let last: string, entries: Entry[]
    try {
      [last, entries] = await bounded(this.#read(stream, after, this.#options.history), COMMAND_TIMEOUT_MS)
    } catch (err) {
      throw unavailable(err)
    }
    const messages: ChannelMessage[] = []
    let unread = 0
    for (const entry of entries) {
      if (isMarker(entry)) continue
      try {
        messages.push(this.#codec.decode(entry.id, entry.body))
      } catch {
        unread++
      }
    }
    if (unread > 0) this.#options.log.warn({ stream, unread }, 'sse channel skipped Redis entries it cannot read in a replay')
    return { gap: missesEvents(after, entries, last), messages }
  }

  #available (): boolean {
    return this.#command.status === 'ready' && this.#down.size === 0
  }

  /** Throws FST_SSE_BACKEND_UNAVAILABLE while a connection is down: never queued to run after the caller gave up. */
  #ready (): void {
    const { status } = this.#command
    if (status !== 'ready') throw new FST_SSE_BACKEND_UNAVAILABLE(`the Redis connection is ${status}`)
    // The other connection already saw Redis go: a command sent now could sit in ioredis until Redis
    // is back and run then, after this caller was told it failed.
    if (this.#down.size > 0) throw new FST_SSE_BACKEND_UNAVAILABLE('the Redis connection is reconnecting')
  }

  async #read (stream: string, after: string, count: number): Promise<[string, Entry[]]> {
    const [last, raw] = await bounded(this.#command.sseReplay(stream, after, count), CATCH_UP_TIMEOUT_MS)
    return [last, raw.map(readEntry)]
  }

  async #subscribe (announcements: string[]): Promise<void> {
    const subscriber = this.#subscriber as SseRedisClient & { ssubscribe (channel: string): Promise<unknown> }
    try {
      if (!this.#sharded) {
        await subscriber.subscribe(...announcements)
      } else {
        // A Cluster takes sharded subscriptions one slot at a time.
        await Promise.all(announcements.map(announcement => subscriber.ssubscribe(this.#names.sharded(announcement))))
      }
    } catch (err) {
      // Refused at once while the connection is down (its next 'ready' subscribes again); refused by
      // a Redis that is up (an ACL), it is worth a line.
      if (subscriber.status === 'ready') this.#options.log.warn({ err, announcements }, 'sse channel could not subscribe in Redis')
      throw err
    }
  }

  #unsubscribe (announcement: string): void {
    const subscriber = this.#subscriber as SseRedisClient & { sunsubscribe (channel: string): Promise<unknown> }
    // Fails only while the connection is down, and then nothing is subscribed on it any more.
    const unsubscribed = this.#sharded
      ? subscriber.sunsubscribe(this.#names.sharded(announcement))
      : subscriber.unsubscribe(announcement)
    unsubscribed.catch(ignore)
  }

  #onMessage = (announcement: string, payload: string): void => {
    this.#feeds.accept(announcement, payload)
  }

  /** An 'error' or a 'close': down until its next 'ready'; logged once per outage, by the first to notice. */
  #onLost (client: SseRedisClient) {
    return (err?: Error): void => {
      this.#down.add(client)
      if (this.#state !== 'up') return
      this.#state = 'down'
      this.#options.log.warn({ err }, 'sse lost its Redis connection; reconnecting (publish and replay fail meanwhile)')
    }
  }

  #onReady (client: SseRedisClient) {
    return (): void => {
      this.#down.delete(client)
      if (client === this.#command) this.#clock.sync(client).catch(ignore)
      else this.#feeds.resubscribe()
      if (this.#state === 'down' && this.#down.size === 0) {
        this.#state = 'up'
        this.#options.log.info('sse Redis connection is back; catching up')
      }
    }
  }
}
