import type { FastifyBaseLogger } from 'fastify'
import type { Feeder, StreamSink } from './adoption.js'
import { closeSource } from './close-source.js'
import type { SseIterator } from './source.js'

/**
 * Feeds a pump from a source that must be pulled (a generator, any iterator): one `next()` at a time,
 * none while the pump says its socket is full. A source that finished by itself (done, or `next()`
 * threw) is never closed again: a `for await` loop would not call `return()` there either.
 */
export class PullDriver implements Feeder {
  readonly #iterator: SseIterator
  readonly #sink: StreamSink
  readonly #log: FastifyBaseLogger
  /** Waiting for room in the socket: called by `resume()` or `close()`. */
  #wake: (() => void) | null = null
  /** The stream is over: pull no more. */
  #stopped = false
  /** The source finished by itself: nothing to close. */
  #finished = false
  #closing: Promise<void> | null = null

  constructor (iterator: SseIterator, sink: StreamSink, log: FastifyBaseLogger) {
    this.#iterator = iterator
    this.#sink = sink
    this.#log = log
  }

  start (): void {
    // eslint-disable-next-line no-void -- #run never rejects: every failure ends the stream instead
    void this.#run()
  }

  resume (): void {
    const wake = this.#wake
    this.#wake = null
    wake?.()
  }

  /**
   * Called while `next()` is pending, this closes the source at once rather than at its next value:
   * an async generator runs its `finally` as soon as the pending step settles.
   */
  close (): Promise<void> {
    if (this.#closing === null) {
      this.#stopped = true
      this.resume()
      this.#closing = this.#finished ? Promise.resolve() : closeSource(this.#iterator, this.#log)
    }
    return this.#closing
  }

  async #run (): Promise<void> {
    const iterator = this.#iterator
    const sink = this.#sink
    while (!this.#stopped) {
      let step: IteratorResult<unknown>
      try {
        step = await iterator.next()
      } catch (err) {
        this.#finished = true
        // A no-op when the stream already ended: a source that throws because its signal aborted
        // has done what it should, and that is not an error.
        sink.finish(err)
        return
      }
      if (step.done === true) {
        this.#finished = true
        sink.finish()
        return
      }
      if (this.#stopped) return
      if (!sink.deliver(step.value) && !this.#stopped) {
        await new Promise<void>(resolve => { this.#wake = resolve })
      }
    }
  }
}
