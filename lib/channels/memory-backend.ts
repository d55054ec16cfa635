import { prepare, type Serializer } from '../frame.js'
import type { SseMessage } from '../message.js'
import type { ChannelMessage } from '../types.js'
import type { BackendSink, ChannelBackend, InternalPublish, Replay } from './backend.js'
import { History } from './history.js'
import { IdempotencyKeys } from './idempotency.js'

/** The default backend: one app, history in a ring per channel, delivery in the publisher's own call. */
export class MemoryBackend implements ChannelBackend {
  readonly #histories = new Map<string, History>()
  /** Per channel, created by its first publish with a key. */
  readonly #keys = new Map<string, IdempotencyKeys>()
  /** Records by channel, with when each expires (Date.now()); an expired one is dropped when met or swept. */
  readonly #records = new Map<string, { fields: Record<string, string>, expiresAt: number }>()
  readonly #capacity: number
  readonly #idempotencyWindow: number
  readonly #serialize: Serializer
  readonly #sink: BackendSink

  constructor (capacity: number, idempotencyWindow: number, serialize: Serializer, sink: BackendSink) {
    this.#capacity = capacity
    this.#idempotencyWindow = idempotencyWindow
    this.#serialize = serialize
    this.#sink = sink
  }

  // A publish here never fails for want of the backend: `internal.attempt` has nothing to guard.
  async publish (channel: string, message: SseMessage, idempotencyKey?: string, serialize?: Serializer,
    internal?: InternalPublish): Promise<string> {
    const now = Date.now()
    let keys: IdempotencyKeys | undefined
    if (idempotencyKey !== undefined) {
      keys = this.#keys.get(channel)
      if (keys === undefined) this.#keys.set(channel, keys = new IdempotencyKeys(this.#idempotencyWindow))
      const first = keys.idOf(idempotencyKey, now)
      if (first !== undefined) return first
    }
    const history = this.#historyOf(channel)
    const id = history.nextId()
    // Framed (and serialized) once, before the id is taken: an invalid message leaves no hole.
    const prepared = prepare({ ...message, id }, serialize ?? this.#serialize) as ChannelMessage
    history.push(prepared)
    keys?.remember(idempotencyKey!, id, now)
    if (internal?.recordEnd !== undefined) this.#saveNow(channel, { end: id }, internal.recordEnd)
    this.#sink.deliver(channel, prepared)
    return id
  }

  async replay (channel: string, lastEventId: string): Promise<Replay> {
    return this.#historyOf(channel).after(lastEventId)
  }

  async position (channel: string): Promise<string> {
    return this.#historyOf(channel).lastId()
  }

  // Every event is delivered to the hub, which knows who listens.
  watch (): void {}
  unwatch (): void {}
  async close (): Promise<void> {}

  /** The record's fields merged with `fields`, kept `ttlMs` from now. */
  #saveNow (channel: string, fields: Readonly<Record<string, string>>, ttlMs: number): void {
    this.#records.set(channel, { fields: { ...this.#live(channel), ...fields }, expiresAt: Date.now() + ttlMs })
  }

  /** The record's fields, unless there is none or it expired (then dropped). */
  #live (channel: string): Record<string, string> | undefined {
    const record = this.#records.get(channel)
    if (record === undefined) return undefined
    if (record.expiresAt > Date.now()) return record.fields
    this.#records.delete(channel)
    return undefined
  }

  async createRecord (channel: string, fields: Readonly<Record<string, string>>, ttlMs: number): Promise<boolean> {
    if (this.#live(channel) !== undefined) return false
    this.#saveNow(channel, fields, ttlMs)
    return true
  }

  async readRecord (channel: string): Promise<Readonly<Record<string, string>> | undefined> {
    return this.#live(channel)
  }

  // Records nobody reads again would stay: the hub's sweep drops the expired ones.
  sweep (now: number): void {
    for (const [name, record] of this.#records) {
      if (record.expiresAt <= now) this.#records.delete(name)
    }
  }

  forget (channel: string): void {
    this.#histories.delete(channel)
    this.#keys.delete(channel)
  }

  #historyOf (channel: string): History {
    let history = this.#histories.get(channel)
    if (history === undefined) {
      history = new History(this.#capacity)
      this.#histories.set(channel, history)
    }
    return history
  }
}
