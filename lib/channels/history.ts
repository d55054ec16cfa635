import { randomInt } from 'node:crypto'
import type { ChannelMessage } from '../types.js'
import type { Replay } from './backend.js'

// Epochs start at a random point below 2^48 (15 digits), drawn once per process, and each history
// takes the next one. Not the clock: two processes started in the same millisecond got the same ids,
// and a client moving from one to the other resumed from the wrong events. Two processes now share
// an epoch only if their ranges meet (odds about histories / 2^48); within a process epochs are
// distinct and grow, so a channel forgotten and made again keeps growing ids. 2^48 + 2^49 histories
// still fit in 15 digits.
let lastEpoch = randomInt(2 ** 48 - 1)

function newEpoch (): number {
  return ++lastEpoch
}

const SEQ = /^\d{1,15}$/

/**
 * The last `capacity` events of one in-memory channel, in a ring that grows to `capacity` and is
 * then overwritten in place. Ids are `<epoch>-<seq>`: the epoch is this history's own, so an id from
 * an earlier run of the process, another process, or an earlier history of the channel is unknown.
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

  /** The newest event's id; before the first, `<epoch>-0`, which `after` knows as the start. */
  lastId (): string {
    return this.#prefix + this.#seq
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
