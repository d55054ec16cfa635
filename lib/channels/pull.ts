import type { StreamSink } from '../adoption.js'
import type { ChannelMessage } from '../types.js'

export type PullResult = IteratorResult<ChannelMessage>
type Waiter = (result: PullResult | PromiseLike<PullResult>) => void

export const DONE: IteratorReturnResult<undefined> = Object.freeze({ value: undefined, done: true })

/**
 * The consumer of a subscription read with `next()`, as a stream is the consumer of one it adopted:
 * it takes one event per pull. Told the subscription is over, it settles the pull that waits, or
 * keeps the failure for the next pull to throw (once); every pull after that is done.
 */
export class Pull implements StreamSink {
  #waiter: Waiter | null = null
  #failure: { error: unknown } | null = null
  #finished = false

  /** A pull, settled by the next `deliver()` or `finish()`. */
  next (): Promise<PullResult> {
    const failure = this.#failure
    if (failure !== null) {
      this.#failure = null
      return Promise.reject(failure.error)
    }
    if (this.#finished) return Promise.resolve(DONE)
    return new Promise(resolve => { this.#waiter = resolve })
  }

  /** Only called while a pull waits. `false`: the next event waits for the next pull. */
  deliver (value: unknown): boolean {
    const waiter = this.#waiter!
    this.#waiter = null
    waiter({ value: value as ChannelMessage, done: false })
    return false
  }

  finish (error?: unknown): void {
    this.#finished = true
    const waiter = this.#waiter
    this.#waiter = null
    if (error === undefined) waiter?.(DONE)
    else if (waiter === null) this.#failure = { error }
    else waiter(Promise.reject(error))
  }

  /** For a reader in the process, falling behind ends the subscription like any other end. */
  tooSlow (): void {
    this.finish()
  }
}
