import type { FastifyRequest } from 'fastify'
import { frameOf, HEARTBEAT_FRAME, preparedBytes, retryFrame } from './frame.js'
import type { Beating } from './heartbeat.js'
import type { StreamSettings } from './options.js'
import { isAdoptable, kAdopt, kResume, type AdoptableSource, type SseIterator, type StreamContext, type StreamSink } from './source.js'

/** Why a stream ended; it is logged with every stream end. */
export type EndReason = 'source-done' | 'client-gone' | 'error' | 'server-closing'

/** The slice of `http.ServerResponse` / `http2.Http2ServerResponse` the pump writes to. */
export interface StreamTarget {
  write (chunk: string | Buffer): boolean
  end (): unknown
  on (event: 'close' | 'drain', listener: () => void): unknown
  removeListener (event: 'close' | 'drain', listener: () => void): unknown
  readonly destroyed: boolean
  readonly writableEnded: boolean
}

/** What the pump reports to when it starts and once it is over. */
export interface PumpOwner {
  readonly heartbeats: { add (member: Beating, intervalMs: number | false): void, delete (member: Beating, intervalMs: number | false): void }
  /** The stream ended and its source was finalized. */
  finished (pump: StreamPump): void
}

/**
 * Frames pulled within one turn of the event loop are written together once they reach this many
 * characters, or at the latest on the next `setImmediate`: one write per batch instead of per event.
 */
const COALESCE_CHARS = 16 * 1024

/** Where a response keeps its pump, so that one shared listener serves every stream. */
const kPump = Symbol('fastify-sse-stream.pump')
type OwnedTarget = StreamTarget & { [kPump]: StreamPump }

/**
 * The only writer of stream bytes: pulls a value, frames it, writes it, and does not pull again
 * while the socket says its buffer is full (an adopted source delivers instead, and is told to hold
 * on while the socket is full). Ending (for any reason) aborts the stream's signal and finalizes the
 * source with `return()`, so a generator's `finally` always runs.
 *
 * A broadcast keeps thousands of these alive, so a pump holds no closures of its own: its listeners
 * are shared functions that find the pump on the response, and its heartbeat is a shared clock.
 */
export class StreamPump implements Beating, StreamSink {
  events = 0
  bytes = 0
  reason: EndReason | undefined
  error: unknown
  idleTicks = 0
  readonly request: FastifyRequest
  readonly startedAt = performance.now()
  endedAt = 0
  /** Settles when the stream has ended and its source has been finalized. Never rejects. */
  readonly done: Promise<void>

  #res: OwnedTarget
  #iterator: SseIterator
  #settings: StreamSettings
  #context: StreamContext
  #owner: PumpOwner
  #pending = ''
  /** When `#pending` is one prepared frame, its shared bytes: written as they are, not encoded again. */
  #pendingBytes: Buffer | null = null
  /** Queued for the next shared flush round (see `#scheduleRound`). */
  #flushQueued = false
  #blocked = false
  #wake: (() => void) | null = null
  #ended = false
  /** Set while the loop waits for the source, so ending can close the source at once. */
  #pulling = false
  #closing: Promise<unknown> | null = null
  /** A source that delivers to this pump instead of being pulled (see `kAdopt`). */
  #adopted: AdoptableSource | null = null
  #settle: (() => void) | null = null

  static #onClose = function (this: OwnedTarget): void { this[kPump].end('client-gone') }
  static #onDrain = function (this: OwnedTarget): void { this[kPump].#resume() }
  /** Every pump with frames waiting, written out together in one flush round. */
  static #due: StreamPump[] = []
  static #dueScheduled = false
  /** When the current flush round started, and the earliest time the next one may (ms). */
  static #roundStartedAt = 0
  static #nextRoundAt = 0

  static #flushDue = (): void => {
    StreamPump.#roundStartedAt = performance.now()
    StreamPump.#dueScheduled = false
    const due = StreamPump.#due
    StreamPump.#due = []
    // A pump that ended, or already wrote early, since it was queued has nothing left to write.
    for (const pump of due) if (pump.#flushQueued) pump.#flush()
    // Node's HTTP layer makes the system calls for these writes on the next ticks: the round ends
    // after them (the tick queue runs in order).
    process.nextTick(StreamPump.#roundDone)
  }

  /** A round that took T ms is followed by the next no sooner than T ms after it ended. */
  static #roundDone = (): void => {
    const now = performance.now()
    StreamPump.#nextRoundAt = now + (now - StreamPump.#roundStartedAt)
  }

  /**
   * One flush round for all the streams written this turn, not a callback each. Right away when the
   * loop has been free at least as long as the last round took; otherwise once it has been: under a
   * broadcast burst, writes then take at most about half the event loop (other requests keep being
   * served), and what arrives meanwhile for a socket goes out in the same write.
   */
  static #scheduleRound (): void {
    if (StreamPump.#dueScheduled) return
    StreamPump.#dueScheduled = true
    const wait = StreamPump.#nextRoundAt - performance.now()
    if (wait >= 1) setTimeout(StreamPump.#flushDue, wait)
    else setImmediate(StreamPump.#flushDue)
  }

  constructor (res: StreamTarget, iterator: SseIterator, settings: StreamSettings, context: StreamContext,
    request: FastifyRequest, owner: PumpOwner, firstFrame: string) {
    this.#res = res as OwnedTarget
    this.#res[kPump] = this
    this.#iterator = iterator
    this.#settings = settings
    this.#context = context
    this.request = request
    this.#owner = owner
    owner.heartbeats.add(this, settings.heartbeat)
    res.on('close', StreamPump.#onClose)
    if (firstFrame !== '') {
      this.#append(firstFrame)
      this.#flush()
    }
    if (isAdoptable(iterator)) {
      this.done = new Promise(resolve => { this.#settle = resolve })
      this.#adopted = iterator
      iterator[kAdopt](this)
    } else {
      this.done = this.#run()
    }
  }

  /** End the stream now. Idempotent: the first reason is the one that counts. */
  end (reason: EndReason, error?: unknown): void {
    if (this.#ended) return
    this.#ended = true
    this.reason = reason
    this.error = error
    this.endedAt = performance.now()
    this.#owner.heartbeats.delete(this, this.#settings.heartbeat)
    this.#flushQueued = false
    const res = this.#res
    res.removeListener('close', StreamPump.#onClose)
    res.removeListener('drain', StreamPump.#onDrain)
    if (!res.destroyed && !res.writableEnded) {
      // Leaving because the server closes: spread the reconnections of every client over time.
      if (reason === 'server-closing') this.#append(retryFrame(closingRetry(this.#settings.retry)))
      if (this.#pending !== '') this.#write(this.#pending)
      res.end()
    }
    this.#pending = ''
    this.#pendingBytes = null
    this.#context.abort()
    if (this.#adopted !== null) {
      this.#close().then(() => {
        this.#owner.finished(this)
        this.#settle?.()
      })
    } else if (this.#pulling) {
      // A source waited on is told now rather than at its next value: an async generator runs its
      // `finally` as soon as its pending step settles.
      this.#closing = this.#close()
    }
    this.#wake?.()
  }

  /** An adopted source delivers a value. */
  deliver (value: unknown): boolean {
    if (this.#ended) return false
    let frame: string
    try {
      frame = frameOf(value, this.#settings.serialize)
    } catch (err) {
      this.end('error', err)
      return false
    }
    this.events++
    this.#push(frame, value)
    return !this.#blocked
  }

  /** An adopted source is over. */
  finish (error?: unknown): void {
    if (error === undefined) this.end('source-done')
    else this.end('error', error)
  }

  /** The heartbeat clock asks: write a comment line, unless the socket is full (then it is not idle). */
  beat (): void {
    if (this.#blocked) return
    this.#append(HEARTBEAT_FRAME)
    this.#flush()
  }

  async #run (): Promise<void> {
    const iterator = this.#iterator
    let finished = false
    try {
      while (!this.#ended) {
        let step: IteratorResult<unknown>
        this.#pulling = true
        try {
          step = await iterator.next()
        } catch (err) {
          finished = true
          // No-op when the stream already ended: a source that throws because its signal aborted
          // (client gone, server closing) has done what it should, and that is not an error.
          this.end('error', err)
          break
        } finally {
          this.#pulling = false
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
        this.#push(frame, step.value)
        if (this.#blocked) await this.#drained()
      }
    } finally {
      await (this.#closing ?? (finished ? null : this.#close()))
      this.#owner.finished(this)
    }
  }

  async #close (): Promise<void> {
    try {
      await this.#iterator.return?.()
    } catch (err) {
      // The stream is already over; a `finally` that throws is reported, never rethrown.
      this.request.log.warn({ err }, 'sse source threw while being closed')
    }
  }

  /** Add to what the next flush writes; `value` is what the frame came from, when it may carry bytes. */
  #append (frame: string, value?: unknown): void {
    this.#pendingBytes = this.#pending === '' ? preparedBytes(value) ?? null : null
    this.#pending += frame
  }

  #push (frame: string, value: unknown): void {
    this.#append(frame, value)
    if (this.#pending.length >= COALESCE_CHARS) {
      this.#flush()
    } else if (!this.#flushQueued) {
      this.#flushQueued = true
      StreamPump.#due.push(this)
      StreamPump.#scheduleRound()
    }
  }

  // Runs from the shared flush, or at once when a batch is big enough (then the queued flush finds
  // nothing to do). Writing to a socket that is already gone is harmless: its 'close' ends the stream.
  #flush (): void {
    this.#flushQueued = false
    const chunk = this.#pendingBytes ?? this.#pending
    this.#pending = ''
    this.#pendingBytes = null
    this.idleTicks = 0
    if (!this.#write(chunk) && !this.#blocked) {
      this.#blocked = true
      this.#res.on('drain', StreamPump.#onDrain)
    }
  }

  #write (chunk: string | Buffer): boolean {
    this.bytes += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length
    return this.#res.write(chunk)
  }

  #drained (): Promise<void> {
    return new Promise(resolve => { this.#wake = resolve })
  }

  #resume (): void {
    this.#blocked = false
    this.#res.removeListener('drain', StreamPump.#onDrain)
    if (this.#adopted !== null) {
      this.#adopted[kResume]()
      return
    }
    const wake = this.#wake
    this.#wake = null
    wake?.()
  }
}

/** `retry:` for a closing server: the usual delay plus up to as much again (at least 1 s) at random. */
export function closingRetry (retry: number | undefined): number {
  const base = retry ?? 3000
  return base + Math.floor(Math.random() * Math.max(base, 1000))
}
