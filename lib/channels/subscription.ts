import { prepare } from '../frame.js'
import { kAdopt, kResume, type AdoptableSource, type StreamSink } from '../adoption.js'
import type { ChannelMessage } from '../types.js'
import { compareIds, type Replay } from './backend.js'

/**
 * The event a subscriber receives when events it should have had are gone: its `lastEventId` is
 * older than the history or unknown, or (with Redis) events could not reach this app. Its data is
 * JSON `{ "lastEventId": <the last id the subscriber had> }`; what is still kept follows it.
 */
export const GAP_EVENT = 'sse-gap'

/** Gap notices, told apart from published events (which may use any event name) by identity. */
const gaps = new WeakSet<ChannelMessage>()

/** A gap notice after `lastId`. Its id is `lastId`, so a client that reconnects right after it asks again. */
export function gapMessage (lastId: string): ChannelMessage {
  const message = prepare({ id: lastId, event: GAP_EVENT, data: JSON.stringify({ lastEventId: lastId }) },
    JSON.stringify) as ChannelMessage
  gaps.add(message)
  return message
}

/** The channel a subscription reports to. */
export interface SubscriptionOwner {
  /** The subscription ended (returned, aborted, failed): forget it. */
  release (subscription: Subscription): void
  /** The subscription ended because more than `maxSubscriberQueue` events waited: forget it, say so. */
  tooSlow (subscription: Subscription): void
}

type Result = IteratorResult<ChannelMessage>
type Waiter = (result: Result | PromiseLike<Result>) => void

const DONE: IteratorReturnResult<undefined> = Object.freeze({ value: undefined, done: true })

/**
 * One subscriber's view of a channel: replayed events first, then live ones, pulled one at a time.
 * Live events that arrive while nothing pulls wait in a queue allocated on first use; past
 * `maxQueue` waiting events the subscription ends (it can resume from history with its last id).
 * An idle subscription holds little more than the resolver of the pull it waits on.
 */
export class Subscription implements AsyncIterableIterator<ChannelMessage>, AdoptableSource {
  readonly #owner: SubscriptionOwner
  readonly #maxQueue: number
  #signal: AbortSignal | undefined
  #queue: ChannelMessage[] | null = null
  #replay: readonly ChannelMessage[] | null = null
  #replayAt = 0
  /** While the replay is read, live events wait in the queue even when a pull waits. */
  #replaying = false
  /** Live events up to this id were replayed already. */
  #floor: string | null = null
  /** The id of the last message handed out (the client's Last-Event-ID), or the one it resumed from; null: none yet. */
  #last: string | null = null
  /** The last message handed out was a gap notice. */
  #noticed = false
  #waiter: Waiter | null = null
  #ended = false
  /** Why the subscription failed, for the next pull to throw (once). */
  #failure: { error: unknown } | null = null
  /** The stream this subscription delivers to once adopted (`kAdopt`); null while it is pulled. */
  #sink: StreamSink | null = null
  /** The sink said it could take no more: hold events in the queue until it resumes. */
  #sinkFull = false

  constructor (owner: SubscriptionOwner, maxQueue: number, signal: AbortSignal | undefined) {
    this.#owner = owner
    this.#maxQueue = maxQueue
    this.#signal = signal
    if (signal === undefined) return
    if (signal.aborted) {
      this.#ended = true
    } else {
      // The subscription is its own listener (handleEvent): no closure per subscriber.
      signal.addEventListener('abort', this, { once: true })
    }
  }

  get ended (): boolean {
    return this.#ended
  }

  [Symbol.asyncIterator] (): this {
    return this
  }

  next (): Promise<Result> {
    const result = this.#take()
    if (result !== null) return Promise.resolve(result)
    const failure = this.#failure
    if (failure !== null) {
      this.#failure = null
      return Promise.reject(failure.error)
    }
    if (this.#ended) return Promise.resolve(DONE)
    return new Promise(resolve => { this.#waiter = resolve })
  }

  async return (): Promise<Result> {
    // The consumer ends it, so the consumer (an adopting stream included) is not told back.
    this.#sink = null
    if (this.#end()) this.#owner.release(this)
    return DONE
  }

  /** The signal aborted. */
  handleEvent (): void {
    if (this.#end()) this.#owner.release(this)
  }

  /**
   * A stream takes over: events are handed to it as they come, with no promise per event. The stream
   * ends this subscription with return(), so the abort listener and the signal are let go (the
   * signal can then be collected with its controller).
   */
  [kAdopt] (sink: StreamSink): void {
    this.#sink = sink
    this.#signal?.removeEventListener('abort', this)
    this.#signal = undefined
    this.#pour()
  }

  [kResume] (): void {
    this.#sinkFull = false
    this.#pour()
  }

  /** A live event. */
  push (message: ChannelMessage): void {
    if (this.#floor !== null) {
      if (compareIds(message.id, this.#floor) <= 0) return
      this.#floor = null
    }
    this.#offer(message)
  }

  /** A gap notice: never dropped as already replayed (see #handsOut for when it is dropped). */
  pushGap (message: ChannelMessage): void {
    this.#offer(message)
  }

  /** Hand out what `replay` gives before any live event; live events it already holds are dropped. */
  replayFrom (replay: Promise<Replay>, lastEventId: string): void {
    this.#replaying = true
    this.#last = lastEventId
    replay.then(result => this.#replayed(result, lastEventId), error => this.#fail(error))
  }

  /** End without telling the owner (it is ending everything). */
  close (): void {
    this.#end()
  }

  #offer (message: ChannelMessage): void {
    if (this.#ended) return
    const sink = this.#sink
    if (sink !== null && !this.#sinkFull && !this.#replaying && (this.#queue === null || this.#queue.length === 0)) {
      if (this.#handsOut(message) && !sink.deliver(message)) this.#sinkFull = true
      return
    }
    const waiter = this.#waiter
    if (waiter !== null && !this.#replaying) {
      if (!this.#handsOut(message)) return
      this.#waiter = null
      waiter({ value: message, done: false })
      return
    }
    const queue = this.#queue ??= []
    queue.push(message)
    if (queue.length > this.#maxQueue && this.#end(undefined, true)) this.#owner.tooSlow(this)
  }

  /** Hand the sink everything ready, until it is full; then say if the subscription is over. */
  #pour (): void {
    const sink = this.#sink as StreamSink
    while (!this.#sinkFull) {
      const result = this.#take()
      if (result === null) break
      if (!sink.deliver(result.value)) this.#sinkFull = true
    }
    if (!this.#ended) return
    const failure = this.#failure
    this.#failure = null
    sink.finish(failure?.error)
  }

  #take (): Result | null {
    for (;;) {
      const message = this.#next()
      if (message === null) return null
      if (this.#handsOut(message)) return { value: message, done: false }
    }
  }

  #next (): ChannelMessage | null {
    const replay = this.#replay
    if (replay !== null) {
      const message = replay[this.#replayAt++]!
      if (this.#replayAt === replay.length) this.#replay = null
      return message
    }
    const queue = this.#queue
    if (this.#replaying || queue === null || queue.length === 0) return null
    return queue.shift()!
  }

  /**
   * Whether `message`, next in line, goes out (it is then the last). A backend's gap notice goes to
   * every subscriber of the channel, whatever each has: it goes out only right after the id it names
   * (or first). Anywhere else its id would move the client's Last-Event-ID back, or onto an event it
   * never had: it resumed since, and its replay gave it what is kept, its own notice first.
   */
  #handsOut (message: ChannelMessage): boolean {
    // Published events never carry the reserved name: the set is asked about notices only.
    const notice = message.event === GAP_EVENT && gaps.has(message)
    if (notice && this.#last !== null && (this.#last !== message.id || this.#noticed)) return false
    this.#last = message.id
    this.#noticed = notice
    return true
  }

  #replayed ({ messages, gap }: Replay, lastEventId: string): void {
    if (this.#ended) return
    this.#replaying = false
    const last = messages.length > 0 ? messages[messages.length - 1]!.id : gap ? null : lastEventId
    if (last !== null) {
      const queue = this.#queue
      const kept = queue?.filter(message => gaps.has(message) || compareIds(message.id, last) > 0) ?? []
      this.#queue = queue === null ? null : kept
      // Live events still to come may repeat replayed ones until one passes `last`.
      if (kept.length === 0) this.#floor = last
    }
    const replay = gap ? [gapMessage(lastEventId), ...messages] : messages
    if (replay.length > 0) {
      this.#replay = replay
      this.#replayAt = 0
    }
    if (this.#sink !== null) {
      this.#pour()
      return
    }
    const waiter = this.#waiter
    const result = waiter === null ? null : this.#take()
    if (result !== null) {
      this.#waiter = null
      waiter!(result)
    }
  }

  #fail (error: unknown): void {
    if (!this.#end(error)) return
    this.#owner.release(this)
  }

  /**
   * Returns whether this call ended it. A pending pull settles: done, or rejected with `error`; an
   * adopting stream is told why (`tooSlow`: its queue overflowed).
   */
  #end (error?: unknown, tooSlow = false): boolean {
    if (this.#ended) return false
    this.#ended = true
    this.#queue = null
    this.#replay = null
    this.#signal?.removeEventListener('abort', this)
    const sink = this.#sink
    if (sink !== null) {
      if (tooSlow) sink.tooSlow()
      else sink.finish(error)
      return true
    }
    const waiter = this.#waiter
    this.#waiter = null
    if (error !== undefined) {
      if (waiter === null) this.#failure = { error }
      else waiter(Promise.reject(error))
    } else {
      waiter?.(DONE)
    }
    return true
  }
}
