import type { FastifyBaseLogger } from 'fastify'
import { frameOf, HEARTBEAT_FRAME, retryFrame } from './frame.js'
import { startHeartbeat, type Heartbeat } from './heartbeat.js'
import type { StreamSettings } from './options.js'
import type { SseIterator } from './source.js'

/** Why a stream ended; it is logged with every stream end. */
export type EndReason = 'source-done' | 'client-gone' | 'error' | 'server-closing'

/** The slice of `http.ServerResponse` / `http2.Http2ServerResponse` the pump writes to. */
export interface StreamTarget {
  write (chunk: string): boolean
  end (): unknown
  on (event: 'close' | 'drain', listener: () => void): unknown
  removeListener (event: 'close' | 'drain', listener: () => void): unknown
  readonly destroyed: boolean
  readonly writableEnded: boolean
}

/**
 * Frames pulled within one turn of the event loop are written together once they reach this many
 * characters, or at the latest on the next `setImmediate`: one write per batch instead of per event.
 */
const COALESCE_CHARS = 16 * 1024

/**
 * The only writer of stream bytes: pulls a value, frames it, writes it, and does not pull again
 * while the socket says its buffer is full. Ending (for any reason) aborts the stream's signal and
 * finalizes the source with `return()`, so a generator's `finally` always runs.
 */
export class StreamPump {
  events = 0
  bytes = 0
  reason: EndReason | undefined
  error: unknown
  readonly startedAt = performance.now()
  endedAt = 0
  /** Settles when the stream has ended and its source has been finalized. Never rejects. */
  readonly done: Promise<void>

  #res: StreamTarget
  #iterator: SseIterator
  #settings: StreamSettings
  #controller: AbortController
  #log: FastifyBaseLogger
  #heartbeat: Heartbeat
  #pending = ''
  #flushScheduled: NodeJS.Immediate | null = null
  #blocked = false
  #wake: (() => void) | null = null
  #ended = false

  constructor (res: StreamTarget, iterator: SseIterator, settings: StreamSettings,
    controller: AbortController, log: FastifyBaseLogger, firstFrame: string) {
    this.#res = res
    this.#iterator = iterator
    this.#settings = settings
    this.#controller = controller
    this.#log = log
    this.#heartbeat = startHeartbeat(settings.heartbeat, this.#onIdle)
    res.on('close', this.#onClose)
    res.on('drain', this.#onDrain)
    if (firstFrame !== '') {
      this.#pending = firstFrame
      this.#flush()
    }
    this.done = this.#run()
  }

  /** End the stream now. Idempotent: the first reason is the one that counts. */
  end (reason: EndReason, error?: unknown): void {
    if (this.#ended) return
    this.#ended = true
    this.reason = reason
    this.error = error
    this.endedAt = performance.now()
    this.#heartbeat.stop()
    if (this.#flushScheduled !== null) clearImmediate(this.#flushScheduled)
    const res = this.#res
    res.removeListener('close', this.#onClose)
    res.removeListener('drain', this.#onDrain)
    if (!res.destroyed && !res.writableEnded) {
      // Leaving because the server closes: spread the reconnections of every client over time.
      if (reason === 'server-closing') this.#pending += retryFrame(closingRetry(this.#settings.retry))
      if (this.#pending !== '') this.#write(this.#pending)
      res.end()
    }
    this.#pending = ''
    this.#controller.abort()
    this.#wake?.()
  }

  async #run (): Promise<void> {
    const iterator = this.#iterator
    let finished = false
    try {
      while (!this.#ended) {
        let step: IteratorResult<unknown>
        try {
          step = await iterator.next()
        } catch (err) {
          finished = true
          // No-op when the stream already ended: a source that throws because its signal aborted
          // (client gone, server closing) has done what it should, and that is not an error.
          this.end('error', err)
          break
        }
        if (this.#ended) break
        if (step.done === true) {
          finished = true
          this.end('source-done')
          break
        }
        let frame: string
        try {
          frame = frameOf(step.value, this.#settings.serialize)
        } catch (err) {
          this.end('error', err)
          break
        }
        this.events++
        this.#push(frame)
        if (this.#blocked) await this.#drained()
      }
    } finally {
      if (!finished) await this.#finalize()
    }
  }

  async #finalize (): Promise<void> {
    try {
      await this.#iterator.return?.()
    } catch (err) {
      // The stream is already over; a `finally` that throws is reported, never rethrown.
      this.#log.warn({ err }, 'sse source threw while being closed')
    }
  }

  #push (frame: string): void {
    this.#pending += frame
    if (this.#pending.length >= COALESCE_CHARS) {
      this.#flush()
    } else if (this.#flushScheduled === null) {
      this.#flushScheduled = setImmediate(this.#flush)
    }
  }

  // Runs from the scheduled immediate, or at once when a batch is big enough (then the immediate is
  // cancelled). Writing to a socket that is already gone is harmless: its 'close' ends the stream.
  #flush = (): void => {
    if (this.#flushScheduled !== null) {
      clearImmediate(this.#flushScheduled)
      this.#flushScheduled = null
    }
    const chunk = this.#pending
    this.#pending = ''
    if (!this.#write(chunk)) this.#blocked = true
    this.#heartbeat.touch()
  }

  #write (chunk: string): boolean {
    this.bytes += Buffer.byteLength(chunk)
    return this.#res.write(chunk)
  }

  #drained (): Promise<void> {
    return new Promise(resolve => { this.#wake = resolve })
  }

  #onDrain = (): void => {
    this.#blocked = false
    const wake = this.#wake
    this.#wake = null
    wake?.()
  }

  #onIdle = (): void => {
    // A full socket is not an idle one: skip the beat rather than queue bytes behind a slow reader.
    // (No check for an ended stream: ending stops this timer.)
    if (this.#blocked) return
    this.#pending += HEARTBEAT_FRAME
    this.#flush()
  }

  #onClose = (): void => {
    this.end('client-gone')
  }
}

/** `retry:` for a closing server: the usual delay plus up to as much again (at least 1 s) at random. */
export function closingRetry (retry: number | undefined): number {
  const base = retry ?? 3000
  return base + Math.floor(Math.random() * Math.max(base, 1000))
}
