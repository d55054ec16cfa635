import type { FastifyBaseLogger } from 'fastify'
import { describe } from '../describe.js'
import {
  FST_SSE_CHANNELS_CLOSED, FST_SSE_INVALID_EVENTS, FST_SSE_INVALID_IDEMPOTENCY_KEY, FST_SSE_RESERVED_EVENT, FST_SSE_SERIALIZE
} from '../errors.js'
import type { EventCatalog } from '../events/catalog.js'
import { validateId } from '../frame.js'
import { isMessage, type SseMessage } from '../message.js'
import type { Channel, ChannelMessage, PublishOptions, SubscribeOptions } from '../types.js'
import { ID_PATTERN, type ChannelBackend, type InternalPublish, type Replay } from './backend.js'
import { gapChannel, replayChannel } from '../diagnostics.js'
import type { ChannelCounters } from '../stats.js'
import { END_EVENT, GAP_EVENT, gapMessage } from './gap.js'
import { Subscription, type SubscriptionOwner } from './subscription.js'

/** What every channel of one app shares: the hub's settings and its map of channels in use. */
export interface ChannelContext {
  readonly backend: ChannelBackend
  readonly log: FastifyBaseLogger
  readonly maxSubscriberQueue: number
  readonly closed: boolean
  /** Replays and gap notices of every channel, for `app.sse.stats()`. */
  readonly counters: ChannelCounters
  /** The channel in use under `channel.name`: `channel` itself, held again if the name was forgotten. */
  claim (channel: SseChannel): SseChannel
  /** The channel in use under `name`, if any. */
  current (name: string): SseChannel | undefined
}

const MAX_IDEMPOTENCY_KEY_LENGTH = 200
const NOTHING_KEPT: Promise<Replay> = Promise.resolve({ gap: true, messages: [] })

/** A published value as a message without an id: the channel gives every event its id. */
function messageOf (value: unknown): SseMessage {
  if (isMessage(value)) {
    // Only the channel may say events were lost: a notice published by anyone else is refused.
    if (value.event === GAP_EVENT || value.event === END_EVENT) throw new FST_SSE_RESERVED_EVENT(value.event)
    if (value.id === undefined) return value
    const { id: _ignored, ...message } = value
    return message
  }
  return dataMessage(value)
}

function dataMessage (data: unknown): SseMessage {
  if (data === undefined) throw new FST_SSE_SERIALIZE('undefined is not an event; publish a value or a message')
  return { data }
}

function idempotencyKeyOf (options: PublishOptions | undefined): string | undefined {
  const key = options?.idempotencyKey
  if (key === undefined) return undefined
  if (typeof key !== 'string' || key === '' || key.length > MAX_IDEMPOTENCY_KEY_LENGTH) {
    throw new FST_SSE_INVALID_IDEMPOTENCY_KEY(describe(key))
  }
  return key
}

/**
 * One named channel of one app: publishes through the backend, fans its events out to local subscribers.
 * Once the hub forgot it (idle), an object kept by the app still works: it takes its name back, or
 * hands over to the channel that took the name meanwhile, so subscribers are never split in two.
 */
export class SseChannel<T = unknown> implements Channel<T>, SubscriptionOwner {
  readonly name: string
  readonly #context: ChannelContext
  readonly #subscribers = new Set<Subscription>()
  /** When it was made, last published on, or last left by its last subscriber (Date.now()). */
  #lastUse = Date.now()
  /** Its declared events (`channel(name, { events })`): every publish is checked and serialized by them. */
  #events: EventCatalog | undefined

  constructor (name: string, context: ChannelContext) {
    this.name = name
    this.#context = context
  }

  /** Declare its events; a channel declared already keeps its declaration, and refuses another. */
  declare (events: EventCatalog): void {
    if (this.#events === undefined) this.#events = events
    else if (this.#events !== events) throw new FST_SSE_INVALID_EVENTS(`the channel ${this.name} is declared with other events`)
  }

  get size (): number {
    return (this.#context.current(this.name) ?? this).#subscribers.size
  }

  async publish (value: T | SseMessage<T>, options?: PublishOptions): Promise<string> {
    return this.#publish(messageOf(value), options)
  }

  async publishData (data: T, options?: PublishOptions): Promise<string> {
    return this.#publish(dataMessage(data), options)
  }

  #publish (message: SseMessage, options: PublishOptions | undefined, internal?: InternalPublish): Promise<string> {
    if (this.#context.closed) throw new FST_SSE_CHANNELS_CLOSED()
    const key = idempotencyKeyOf(options)
    // Checked before anything is stored: an undeclared event or invalid data takes no id.
    const serialize = this.#events?.serializerFor(message)
    this.#context.claim(this).#lastUse = Date.now()
    return this.#context.backend.publish(this.name, message, key, serialize, internal)
  }

  /** A resumable stream's value: tried again under `attempt` after a failure, it is stored once. */
  async publishAttempt (value: T | SseMessage<T>, attempt: string): Promise<string> {
    return this.#publish(messageOf(value), undefined, { attempt })
  }

  /**
   * The end of a resumable stream: the one event under the reserved name, published by the plugin
   * only, under an idempotency key of its generation (a retry after an unknown outcome answers the
   * first one's id), its id saved as the record's `end` (kept `ttl` ms) in the same step: a client
   * holding the end is never asked to wait for a record that says it.
   */
  publishEnd (reason: string, idempotencyKey: string, ttl: number): Promise<string> {
    return this.#publish({ event: END_EVENT, data: JSON.stringify({ reason }) }, { idempotencyKey }, { recordEnd: ttl })
  }

  subscribe (options: SubscribeOptions = {}): AsyncIterable<ChannelMessage<T>> {
    const channel = this.#context.claim(this)
    if (channel !== this) return channel.subscribe(options) as AsyncIterable<ChannelMessage<T>>
    const { lastEventId, signal } = options
    // The id goes back on the wire in a gap notice: one that could inject a field is refused here.
    const from = lastEventId === undefined || lastEventId === '' ? undefined : validateId(lastEventId)
    const subscription = new Subscription(this, this.#context.maxSubscriberQueue, signal)
    if (this.#context.closed) subscription.close()
    if (subscription.ended) return subscription as AsyncIterable<ChannelMessage<T>>
    this.#subscribers.add(subscription)
    if (this.#subscribers.size === 1) this.#context.backend.watch(this.name)
    if (from !== undefined) subscription.replayFrom(() => this.#replay(from), from)
    return subscription as AsyncIterable<ChannelMessage<T>>
  }

  async position (): Promise<string> {
    const channel = this.#context.claim(this)
    if (channel !== this) return channel.position()
    if (this.#context.closed) throw new FST_SSE_CHANNELS_CLOSED()
    return this.#context.backend.position(this.name)
  }

  /** What is kept after `from`, oldest first, a gap notice first when some of it is gone; no live events. */
  async kept (from: string): Promise<ChannelMessage[]> {
    const { gap, messages } = await this.#replay(from)
    return gap ? [gapMessage(from), ...messages] : [...messages]
  }

  /** What is kept after `from`, read (and counted) when a subscriber's consumer comes. */
  #replay (from: string): Promise<Replay> {
    this.#context.counters.replays++
    if (replayChannel.hasSubscribers) replayChannel.publish({ channel: this.name, lastEventId: from })
    // An id no backend could have given replays nothing: a gap notice, then live events.
    if (!ID_PATTERN.test(from)) return NOTHING_KEPT
    const replay = this.#context.backend.replay(this.name, from)
    const events = this.#events
    if (events === undefined) return replay
    return replay.then(({ gap, messages }) => {
      const declared: ChannelMessage[] = []
      for (const message of messages) {
        if (events.declares(message)) declared.push(message)
        else this.#undeclared(message)
      }
      return { gap, messages: declared }
    })
  }

  /** An event from the backend: the same frozen, framed message for every subscriber. */
  deliver (message: ChannelMessage): void {
    if (this.#events !== undefined && !this.#events.declares(message)) {
      this.#undeclared(message)
      return
    }
    for (const subscription of this.#subscribers) subscription.push(message)
  }

  /** Another app published on this name what this app's declaration does not name: not passed on. */
  #undeclared (message: ChannelMessage): void {
    this.#context.log.warn({ channel: this.name, event: message.event ?? 'message', id: message.id },
      'sse declared channel dropped an event it does not declare')
  }

  /** Events after `lastId` were lost on their way to this app. */
  gap (lastId: string): void {
    const message = gapMessage(lastId)
    for (const subscription of this.#subscribers) subscription.pushGap(message)
  }

  gapHandedOut (): void {
    this.#context.counters.gaps++
    if (gapChannel.hasSubscribers) gapChannel.publish({ channel: this.name })
  }

  release (subscription: Subscription): void {
    this.#subscribers.delete(subscription)
    if (this.#subscribers.size > 0) return
    this.#context.backend.unwatch(this.name)
    this.#lastUse = Date.now()
  }

  /** Whether it has had no subscriber and no publish for `ms` (the hub then forgets it). */
  idleFor (ms: number, now: number): boolean {
    return this.#subscribers.size === 0 && now - this.#lastUse >= ms
  }

  tooSlow (subscription: Subscription): void {
    this.#context.log.warn({ channel: this.name, maxSubscriberQueue: this.#context.maxSubscriberQueue },
      'sse channel subscriber too slow: ended (it can resume from history with its Last-Event-ID)')
    this.release(subscription)
  }

  /** The app is closing: end every subscription. */
  close (): void {
    for (const subscription of this.#subscribers) subscription.close()
    this.#subscribers.clear()
  }
}
