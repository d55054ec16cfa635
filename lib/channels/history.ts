import type { ChannelMessage } from '../types.js'
import type { Replay } from './backend.js'

let lastEpoch = 0

/** A start time no other history of this process has: ids of two histories never pass for each other. */
function newEpoch (): number {
  lastEpoch = Math.max(Date.now(), lastEpoch + 1)
  return lastEpoch
}

const SEQ = /^\d{1,15}$/

/**
 * The last `capacity` events of one in-memory channel, in a ring that grows to `capacity` and is
 * then overwritten in place. Ids are `<epoch>-<seq>`: the epoch is when this history began, so an id
 * from an earlier run of the process, or from another app, is recognised as unknown.
 */
export class History {
  readonly #capacity: number
  readonly #prefix: string
  /** Seq of the newest event; 0 before the first. */
  #seq = 0
  /** The event with seq `s` sits at `(s - 1) % capacity`. */
  #ring: ChannelMessage[] = []

  constructor (capacity: number) {
    this.#capacity = capacity
    this.#prefix = newEpoch() + '-'
  }

  /** The id the next event gets. */
  nextId (): string {
    return this.#prefix + (this.#seq + 1)
  }

  /** Keep `message`, which carries `nextId()`. */
  push (message: ChannelMessage): void {
    this.#seq++
    if (this.#ring.length < this.#capacity) {
      this.#ring.push(message)
    } else if (this.#capacity > 0) {
      this.#ring[(this.#seq - 1) % this.#capacity] = message
    }
  }

  /** The kept events after `lastEventId`; a gap when some after it are gone or the id is not one of ours. */
  after (lastEventId: string): Replay {
    const seq = this.#seqOf(lastEventId)
    const first = this.#seq - this.#ring.length + 1
    if (seq >= first - 1 && seq <= this.#seq) return { gap: false, messages: this.#from(seq + 1) }
    return { gap: true, messages: this.#from(first) }
  }

  #seqOf (id: string): number {
    if (!id.startsWith(this.#prefix)) return -1
    const seq = id.slice(this.#prefix.length)
    return SEQ.test(seq) ? Number(seq) : -1
  }

  #from (seq: number): ChannelMessage[] {
    const messages: ChannelMessage[] = []
    for (let s = seq; s <= this.#seq; s++) messages.push(this.#ring[(s - 1) % this.#capacity]!)
    return messages
  }
}
