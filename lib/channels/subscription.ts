import { kAdopt, kResume, type AdoptableSource, type StreamSink } from '../adoption.js'
import type { ChannelMessage } from '../types.js'
import { compareIds, type Replay } from './backend.js'
import { GAP_EVENT, isGapNotice } from './gap.js'
import { DONE, Pull, type PullResult } from './pull.js'
import { mergeReplay } from './replay-merge.js'

export { GAP_EVENT, gapMessage } from './gap.js'

/** The channel a subscription reports to. */
export interface SubscriptionOwner {
  /** The subscription ended (returned, aborted, failed): forget it. */
  release (subscription: Subscription): void
  /** The subscription ended because more than `maxSubscriberQueue` events waited: forget it, say so. */
  tooSlow (subscription: Subscription): void
  /** A notice of lost events went to the subscriber (counted). */
  gapHandedOut (): void
  /** Subscribers of the channel, this one included while it is open. */
  readonly size: number
}

/** `#floor` while a replay is read: which live events it holds is not known yet, so every one waits. */
const REPLAYING = Symbol('replaying')

/** An end without an error to pass on. */
const ENDED = Object.freeze({ error: undefined })

/**
 * One subscriber's view of a channel: replayed events first, then live ones, in order, each once.
 * Its consumer is either the stream that adopted it (`kAdopt`), handed events as they come with no
 * promise per event, or a `Pull` serving `next()`; both take events while they can and say when
 * they cannot. Events the consumer cannot take wait in a queue allocated on first use; past
 * `maxQueue` waiting live events the subscription ends (it can resume from history with its last id).
 */
export class Subscription implements AsyncIterableIterator<ChannelMessage>, AdoptableSource {
  readonly #owner: SubscriptionOwner
  readonly #maxQueue: number
  /** Ends it when aborted, until a stream adopts it (the stream then ends it with return()). */
  #signal: AbortSignal | undefined
  /** Who takes its events: an adopting stream or a Pull; null before the first of either. */
  #consumer: StreamSink | null = null
  /** Whether the consumer takes an event now: a pull waits, or the stream has room. */
  #ready = false
  /** Events waiting for the consumer, replayed ones first; null when none waits. */
  #queue: ChannelMessage[] | null = null
  /** How many at the front of the queue the replay gave: they do not count toward `maxQueue`. */
  #replayed = 0
  /** Live events up to this id were replayed: they are dropped. Null: every live event is new. */
  #floor: string | null | typeof REPLAYING = null
  /** Null while open; once over, what its consumer is still to be told (an error, or none). */
  #end: { readonly error: unknown } | null = null
  /** The id of the last message handed out (the client's Last-Event-ID), or the one it resumed from; null: none yet. */
  #last: string | null = null
  /** The last message handed out was a gap notice. */
  #noticed = false
  /** The replay to read when the first consumer comes; null: none, or read already. */
  #replay: (() => Promise<Replay>) | null = null

  constructor (owner: SubscriptionOwner, maxQueue: number, signal: AbortSignal | undefined) {
    this.#owner = owner
    this.#maxQueue = maxQueue
    this.#signal = signal
    if (signal === undefined) return
    if (signal.aborted) {
      this.#end = ENDED
    } else {
      // The subscription is its own listener (handleEvent): no closure per subscriber.
      signal.addEventListener('abort', this, { once: true })
    }
  }

  get ended (): boolean {
    return this.#end !== null
  }

  /** Subscribers of its channel on this app, itself included (for `maxChannelSubscribers`). */
  get channelSize (): number {
    return this.#owner.size
  }

  [Symbol.asyncIterator] (): this {
    return this
  }

  next (): Promise<PullResult> {
    let pull = this.#consumer as Pull | null
    if (pull === null) {
      this.#consumer = pull = new Pull()
      if (this.#end !== null) this.#tell(pull)
      this.#readReplay()
    }
    const result = pull.next()
    this.#ready = true
    this.#pour()
    return result
  }

  async return (): Promise<PullResult> {
    // The consumer ends it: an adopting stream is not told back; a pull still waiting settles, done.
    if (!(this.#consumer instanceof Pull)) this.#consumer = null
    if (this.#close()) this.#owner.release(this)
    return DONE
  }

  /** The signal aborted. */
  handleEvent (): void {
    if (this.#close()) this.#owner.release(this)
  }

  /**
   * A stream takes over: events are handed to it as they come. The stream ends this subscription with
   * return(), so the abort listener and the signal are let go (the signal can then be collected with
   * its controller).
   */
  [kAdopt] (sink: StreamSink): void {
    this.#signal?.removeEventListener('abort', this)
    this.#signal = undefined
    this.#consumer = sink
    if (this.#end !== null) {
      this.#tell(sink)
      return
    }
    this.#readReplay()
    this.#ready = true
    this.#pour()
  }

  [kResume] (): void {
    this.#ready = true
    this.#pour()
  }

  /** A live event. */
  push (message: ChannelMessage): void {
    const floor = this.#floor
    if (typeof floor === 'string') {
      if (compareIds(message.id, floor) <= 0) return
      this.#floor = null
    }
    this.#offer(message)
  }

  /** A gap notice: never dropped as already replayed. */
  pushGap (message: ChannelMessage): void {
    this.#offer(message)
  }

  /**
   * Hand out what `replay()` gives before any live event; live events it already holds are dropped.
   * It is read when a consumer comes, or at the latest once the code that subscribed has run on (a
   * microtask): a stream refused by an admission limit in the meantime costs no history read, and the
   * read still sees the history as it was when the client subscribed (later, its id might have been
   * pushed out by new events, and it would be told of a gap it did not have).
   */
  replayFrom (replay: () => Promise<Replay>, lastEventId: string): void {
    this.#floor = REPLAYING
    this.#last = lastEventId
    this.#replay = replay
    if (this.#consumer !== null) {
      this.#readReplay()
    } else {
      queueMicrotask(() => { this.#readReplay() })
    }
  }

  /** End without telling the owner (it is ending everything). */
  close (): void {
    this.#close()
  }

  #offer (message: ChannelMessage): void {
    if (this.#end !== null) return
    if (this.#ready && this.#queue === null && this.#floor !== REPLAYING) {
      if (this.#handsOut(message)) this.#ready = this.#consumer!.deliver(message)
      return
    }
    const queue = this.#queue ??= []
    queue.push(message)
    if (queue.length - this.#replayed > this.#maxQueue && this.#close(undefined, true)) this.#owner.tooSlow(this)
  }

  /** Hand the consumer what waits, while it takes it. */
  #pour (): void {
    while (this.#ready) {
      const message = this.#take()
      if (message === undefined) return
      this.#ready = this.#consumer!.deliver(message)
    }
  }

  #take (): ChannelMessage | undefined {
    const queue = this.#queue
    if (queue === null || this.#floor === REPLAYING) return undefined
    let message: ChannelMessage | undefined
    do {
      message = queue.shift()
      if (this.#replayed > 0) this.#replayed--
    } while (message !== undefined && !this.#handsOut(message))
    if (queue.length === 0) this.#queue = null
    return message
  }

  /**
   * Whether `message`, next in line, goes out (it is then the last). A backend's gap notice goes to
   * every subscriber of the channel, whatever each has: it goes out only right after the id it names
   * (or first). Anywhere else its id would move the client's Last-Event-ID back, or onto an event it
   * never had: it resumed since, and its replay gave it what is kept, its own notice first.
   */
  #handsOut (message: ChannelMessage): boolean {
    // Published events never carry the reserved name: the set is asked about notices only.
    const notice = message.event === GAP_EVENT && isGapNotice(message)
    if (notice && this.#last !== null && (this.#last !== message.id || this.#noticed)) return false
    this.#last = message.id
    this.#noticed = notice
    if (notice) this.#owner.gapHandedOut()
    return true
  }

  #readReplay (): void {
    const replay = this.#replay
    if (replay === null || this.#end !== null) return
    this.#replay = null
    // Nothing is handed out while a replay is read: the last id is still the one it resumes from.
    const lastEventId = this.#last!
    replay().then(result => this.#merge(result, lastEventId), error => this.#fail(error))
  }

  #merge (replay: Replay, lastEventId: string): void {
    if (this.#end !== null) return
    const { messages, replayed, floor } = mergeReplay(replay, lastEventId, this.#queue ?? [])
    this.#queue = messages.length > 0 ? messages : null
    this.#replayed = replayed
    this.#floor = floor
    this.#pour()
  }

  #fail (error: unknown): void {
    if (this.#close(error)) this.#owner.release(this)
  }

  /**
   * End it; returns whether this call did. What waits is dropped, and the consumer, if there is one
   * yet, is told: too slow (its queue overflowed), or over (with `error`, if it failed).
   */
  #close (error?: unknown, tooSlow = false): boolean {
    if (this.#end !== null) return false
    this.#end = error === undefined ? ENDED : { error }
    this.#queue = null
    this.#replayed = 0
    this.#ready = false
    this.#signal?.removeEventListener('abort', this)
    const consumer = this.#consumer
    if (consumer === null) return true
    if (tooSlow) {
      consumer.tooSlow()
    } else {
      this.#tell(consumer)
    }
    return true
  }

  /** Tell a consumer the subscription is over, with its error if it failed (told once). */
  #tell (consumer: StreamSink): void {
    const { error } = this.#end!
    this.#end = ENDED
    consumer.finish(error)
  }
}
