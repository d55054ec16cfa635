import type { OutgoingHttpHeaders } from 'node:http'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Feeder, StreamSink } from './adoption.js'
import type { StreamContext } from './context.js'
import { encoderFor, type ContentCoding } from './compression.js'
import { clientGone } from './connection.js'
import type { Flushable } from './flush-scheduler.js'
import { frameOf, HEARTBEAT_FRAME, preparedBytes, preparedFrame, retryFrame, type PreparedMessage } from './frame.js'
import type { Beating } from './heartbeat.js'
import type { StreamSettings } from './options.js'

/** Why a stream ended; it is logged with every stream end. */
export type EndReason = 'source-done' | 'client-gone' | 'error' | 'server-closing' | 'too-slow' | 'max-lifetime' |
'write-timeout' | 'expired'

/** Ends after which the client is told to come back later, at a jittered time. */
const COME_BACK = new Set<EndReason>(['server-closing', 'max-lifetime', 'expired'])
/** Node turns a longer timer delay into 1 ms: longer deadlines are reached in steps. */
const MAX_TIMER_DELAY = 2 ** 31 - 1

/** The slice of `http.ServerResponse` / `http2.Http2ServerResponse` the pump writes to. */
export interface StreamTarget {
  writeHead (status: number, headers: OutgoingHttpHeaders): unknown
  flushHeaders (): void
  write (chunk: string | Buffer): boolean
  end (): unknown
  destroy (): unknown
  on (event: 'close' | 'drain', listener: () => void): unknown
  once (event: 'close', listener: () => void): unknown
  removeListener (event: 'close' | 'drain', listener: () => void): unknown
  readonly writableEnded: boolean
  readonly writableFinished: boolean
  readonly writableLength: number
  readonly writableHighWaterMark: number
}

/** What a pump reports to: the app's registry of streams, its heartbeat clock and its flush rounds. */
export interface PumpOwner {
  readonly heartbeats: { add (member: Beating, intervalMs: number | false): void, delete (member: Beating, intervalMs: number | false): void }
  readonly flushes: { queue (item: Flushable): void }
  /** The bytes of a run of prepared messages, shared by every stream that writes the same run. */
  readonly runs: { bytesOf (messages: readonly unknown[]): Buffer }
  /** The stream ended and its source was finalized. */
  finished (pump: StreamPump): void
  /** The stream never started: its source failed to open and Fastify replies with the error. */
  abandoned (pump: StreamPump): void
}

export interface PumpOptions {
  readonly reply: FastifyReply
  /** The response headers, already validated: written when the stream starts. */
  readonly headers: OutgoingHttpHeaders
  /** The coding the stream is sent in (its head says so already); undefined: unencoded. */
  readonly coding?: ContentCoding | undefined
  readonly settings: StreamSettings
  readonly context: StreamContext
  readonly owner: PumpOwner
  /** When the stream must end (epoch ms): `endAt`. */
  readonly endAt?: number | undefined
}

/**
 * Frames delivered within one turn of the event loop are written together once they reach this many
 * characters, or at the latest in the app's next flush round: one write per batch instead of per event.
 */
const COALESCE_CHARS = 16 * 1024

/** Where a response keeps its pump, so that one shared listener serves every stream. */
const kPump = Symbol('fastify-sse-stream.pump')
type OwnedTarget = StreamTarget & { [kPump]: StreamPump }
/** Where frames are written: the response, or the encoder in front of it. */
type FrameOut = Pick<StreamTarget, 'write' | 'end' | 'on' | 'removeListener'> & { [kPump]: StreamPump }

/** The pump set up on this response, if any (a stream started, or is opening, on it). */
export function pumpOf (res: object): StreamPump | undefined {
  return (res as Partial<OwnedTarget>)[kPump]
}

function onClose (this: OwnedTarget): void { this[kPump].end('client-gone') }
function onDrain (this: OwnedTarget): void { this[kPump].drained() }
/** A stream's own timers: its end (`maxLifetime`, `endAt`), and its write deadline while its socket is full. */
interface Deadlines {
  readonly endAt: number | undefined
  lifetime: { timer: NodeJS.Timeout, due: number, reason: EndReason } | null
  writeTimer: NodeJS.Timeout | null
  /** When the socket last became full (performance.now()). */
  blockedAt: number
}

function newDeadlines (endAt: number | undefined): Deadlines {
  return { endAt, lifetime: null, writeTimer: null, blockedAt: 0 }
}

function cutUnfinished (res: StreamTarget & { readonly writableFinished: boolean }): void {
  if (!res.writableFinished) res.destroy()
}
function onLifetime (pump: StreamPump): void { pump.lifetimeDue() }
function onWriteDeadline (pump: StreamPump): void { pump.writeDeadlineDue() }

/**
 * The only writer of stream bytes: the head, frames, heartbeats, the closing `retry:`. It exists from
 * the moment `reply.sse()` accepts a source, before the source is open, so a client that leaves (or a
 * server that closes) while the source opens ends it like any other; it writes the head once a feeder
 * is attached, takes values from it, and tells it to hold on while the socket is full. Ending (for any
 * reason) aborts the stream's signal and has the feeder finalize the source; `done` settles after.
 *
 * A broadcast keeps thousands of these alive, so a pump holds no closures of its own: its listeners
 * are shared functions that find the pump on the response, its heartbeat a shared clock, its flushes
 * the app's shared rounds.
 */
export class StreamPump implements Beating, Flushable, StreamSink {
  events = 0
  bytes = 0
  reason: EndReason | undefined
  error: unknown
  idleTicks = 0
  readonly startedAt = performance.now()
  endedAt = 0
  /** Settles when the stream has ended and its source has been finalized. Never rejects. */
  readonly done: Promise<void>

  readonly #reply: FastifyReply
  readonly #res: OwnedTarget
  #out: FrameOut
  readonly #coding: ContentCoding | undefined
  /** The head still to write; null once written. */
  #headers: OutgoingHttpHeaders | null
  readonly #settings: StreamSettings
  readonly #context: StreamContext
  readonly #owner: PumpOwner
  #feeder: Feeder | null = null
  /** Text waiting for the next flush: frames that are not prepared (and any prepared ones with them). */
  #pending = ''
  /**
   * Prepared messages waiting, while nothing else does: written as their shared bytes (one event's, or
   * a run's built once for every stream that has the same run), never copied per stream.
   */
  #run: unknown[] | null = null
  /** Characters waiting, text and run. */
  #waiting = 0
  /** Queued for the app's next flush round. */
  #flushQueued = false
  #blocked = false
  #ended = false
  #settle!: () => void
  /** Made only for a stream with an end time, a lifetime, or a socket that filled: most never need one. */
  #deadlines: Deadlines | null
  /** What the registry keeps of this stream (its client, its trace), when it keeps anything. */
  registration: unknown = null

  constructor ({ reply, headers, coding, settings, context, owner, endAt }: PumpOptions) {
    this.#reply = reply
    this.#coding = coding
    this.#deadlines = endAt === undefined ? null : newDeadlines(endAt)
    this.#res = this.#out = reply.raw as unknown as OwnedTarget
    this.#headers = headers
    this.#settings = settings
    this.#context = context
    this.#owner = owner
    this.done = new Promise(resolve => { this.#settle = resolve })
    this.#res[kPump] = this
    this.#res.on('close', onClose)
    // The client left before anyone listened (during an async hook or handler): 'close' is past.
    if (clientGone(reply.raw)) this.end('client-gone')
  }

  get request (): FastifyRequest {
    return this.#reply.request
  }

  get ended (): boolean {
    return this.#ended
  }

  /** The head went out: the response is the stream's. */
  get started (): boolean {
    return this.#headers === null
  }

  /** The source is open: write the head and start taking its values (or close it, if the stream ended meanwhile). */
  attach (feeder: Feeder): void {
    this.#feeder = feeder
    if (this.#ended) {
      this.#finalize()
      return
    }
    this.#writeHead()
    if (this.#ended) return
    this.#owner.heartbeats.add(this, this.#settings.heartbeat)
    this.#armLifetime()
    feeder.start()
  }

  /** The lifetime timer fired: end the stream, or wait on for a deadline past one timer's reach. */
  lifetimeDue (): void {
    const lifetime = this.#deadlines!.lifetime!
    const left = lifetime.due - performance.now()
    if (left > 1) {
      lifetime.timer = setTimeout(onLifetime, Math.min(left, MAX_TIMER_DELAY), this).unref()
    } else {
      this.end(lifetime.reason)
    }
  }

  /** The write deadline's timer fired: end the stream if its socket has been full all that long. */
  writeDeadlineDue (): void {
    const deadlines = this.#deadlines!
    deadlines.writeTimer = null
    if (!this.#blocked || this.#ended) return
    const left = (this.#settings.writeTimeout as number) - (performance.now() - deadlines.blockedAt)
    if (left > 1) {
      deadlines.writeTimer = setTimeout(onWriteDeadline, left, this).unref()
    } else {
      this.end('write-timeout')
    }
  }

  /**
   * The stream ended before its source was opened, and never will be: it is over once `closing`
   * (whatever closes what was given) resolves.
   */
  release (closing: Promise<void>): void {
    closing.then(() => {
      this.#owner.finished(this)
      this.#settle()
    })
  }

  /** The source failed to open and Fastify replies with the error: this stream never was. */
  abandon (): void {
    if (this.#ended) {
      // It ended while the source opened (the error is most likely that abort): nothing to close.
      this.release(Promise.resolve())
      return
    }
    this.#ended = true
    this.#detach()
    this.#context.abort()
    this.#settle()
    this.#owner.abandoned(this)
  }

  /** End the stream now. Idempotent: the first reason is the one that counts. */
  end (reason: EndReason, error?: unknown): void {
    if (this.#ended) return
    this.#ended = true
    this.reason = reason
    this.error = error
    this.endedAt = performance.now()
    this.#detach()
    this.#flushQueued = false
    const res = this.#res
    if (reason === 'write-timeout') {
      // The client reads nothing: its connection could never take the end of the stream.
      res.destroy()
    } else if (reason !== 'client-gone' && !clientGone(this.#reply.raw)) {
      if (COME_BACK.has(reason)) {
        // Leaving while the client should stay: spread the reconnections of every client over time.
        if (this.#headers !== null) this.#writeHead(true)
        this.#append(retryFrame(closingRetry(this.#settings.retry)))
      }
      if (this.#headers === null && !res.writableEnded) {
        if (this.#waiting > 0) this.#write(this.#take())
        this.#out.end()
        // Its last frames wait behind a full socket: a client that never reads them is cut in time.
        const { writeTimeout } = this.#settings
        if ((this.#blocked || this.#encodedBackedUp()) && writeTimeout !== false) {
          setTimeout(cutUnfinished, writeTimeout, res).unref()
        }
      }
    } else if (this.#headers !== null) {
      // Gone before the head was written: Fastify must not answer on a closed connection either.
      this.#reply.hijack()
    }
    this.#take()
    this.#context.abort()
    // Still opening: attach() or abandon() finalizes once the source function settles.
    if (this.#feeder !== null) this.#finalize()
  }

  /**
   * Resolves once the source is finalized and the response is closed: its last frames went out (or
   * the client is gone). For `app.close()`: a client that stops reading never lets the closing frames
   * through, and its open response would hold the server open.
   */
  settled (): Promise<void> {
    const res = this.#res
    if (clientGone(this.#reply.raw)) return this.done
    const closed = new Promise<void>(resolve => { res.once('close', resolve) })
    return Promise.all([this.done, closed]).then(() => {})
  }

  /** The server is closing and this response is still open: cut it rather than wait. */
  cut (): void {
    if (!clientGone(this.#reply.raw)) this.#res.destroy()
  }

  /** A value from the feeder. `false`: the socket is full, hold the rest until `resume()`. */
  deliver (value: unknown): boolean {
    if (this.#ended) return false
    let frame: string
    try {
      const { events, serialize } = this.#settings
      frame = events === undefined ? frameOf(value, serialize) : events.frame(value, serialize)
    } catch (err) {
      this.end('error', err)
      return false
    }
    this.events++
    this.#append(frame, value)
    if (this.#waiting >= COALESCE_CHARS) {
      this.#flush()
    } else if (!this.#flushQueued) {
      this.#flushQueued = true
      this.#owner.flushes.queue(this)
    }
    return !this.#blocked
  }

  /** The source is over. */
  finish (error?: unknown): void {
    if (error === undefined) this.end('source-done')
    else this.end('error', error)
  }

  tooSlow (): void {
    this.end('too-slow')
  }

  /** The heartbeat clock asks: write a comment line, unless the socket is full (then it is not idle). */
  beat (): void {
    if (this.#blocked || this.#ended) return
    this.#append(HEARTBEAT_FRAME)
    this.#flush()
  }

  flushDue (): void {
    if (this.#flushQueued) this.#flush()
  }

  /** The socket has room again. */
  drained (): void {
    this.#blocked = false
    this.#stopWaitingForDrain()
    this.#feeder?.resume()
  }

  /**
   * Hijack the reply and send the head. The headers were validated; should Node refuse them anyway,
   * the connection is cut (a client told nothing would wait forever) and the stream ends as an error.
   */
  #writeHead (closing = false): void {
    const headers = this.#headers!
    this.#headers = null
    if (closing && this.request.raw.httpVersionMajor === 1) headers.connection = 'close'
    this.#reply.hijack()
    try {
      this.#res.writeHead(this.#reply.statusCode, headers)
    } catch (err) {
      this.#res.destroy()
      this.end('error', err)
      return
    }
    if (this.#coding !== undefined) this.#encode(this.#coding)
    // Ending as it starts (the server is closing): the closing `retry:` follows at once.
    if (closing) return
    if (this.#settings.retry !== undefined) {
      this.#append(retryFrame(this.#settings.retry))
      this.#flush()
    } else {
      // Send the headers now so the client's `open` fires before any event.
      this.#res.flushHeaders()
    }
  }

  #detach (): void {
    const deadlines = this.#deadlines
    if (deadlines !== null) {
      clearTimeout(deadlines.lifetime?.timer)
      clearTimeout(deadlines.writeTimer ?? undefined)
    }
    this.#owner.heartbeats.delete(this, this.#settings.heartbeat)
    this.#res.removeListener('close', onClose)
    this.#stopWaitingForDrain()
  }

  #stopWaitingForDrain (): void {
    this.#out.removeListener('drain', onDrain)
    if (this.#out !== this.#res) this.#res.removeListener('drain', onDrain)
  }

  /**
   * Whether the response itself is full behind an encoder: the encoder still takes some input (its own
   * buffers), but a source must be held back, and a write deadline run, from the moment the client stops.
   */
  #encodedBackedUp (): boolean {
    const res = this.#res
    // Its buffer at the high-water mark: what writableNeedDrain says on HTTP/1.1, which HTTP/2's compat
    // response has on some Node lines only.
    return this.#out !== res && res.writableLength >= res.writableHighWaterMark
  }

  /** From now on frames go through an encoder (it finds its pump the way the response does, for 'drain'). */
  #encode (coding: ContentCoding): void {
    const encoder = encoderFor(this.#reply.raw, coding) as unknown as FrameOut
    encoder[kPump] = this
    this.#out = encoder
  }

  #finalize (): void {
    this.release(this.#feeder!.close())
  }

  /** Add to what the next flush writes; `value` is what the frame came from, when it may carry bytes. */
  #append (frame: string, value?: unknown): void {
    this.#waiting += frame.length
    if (this.#pending === '' && preparedBytes(value) !== undefined) {
      (this.#run ??= []).push(value)
      return
    }
    // Text from here on: what the run holds goes first.
    if (this.#run !== null) this.#pending = this.#run.map(message => preparedFrame(message as PreparedMessage)).join('')
    this.#run = null
    this.#pending += frame
  }

  /** What waits, as one chunk; nothing waits after. */
  #take (): string | Buffer {
    const run = this.#run
    const chunk = run === null ? this.#pending : run.length === 1 ? preparedBytes(run[0])! : this.#owner.runs.bytesOf(run)
    this.#pending = ''
    this.#run = null
    this.#waiting = 0
    return chunk
  }

  // Writing to a socket that is already gone is harmless: its 'close' ends the stream.
  #flush (): void {
    this.#flushQueued = false
    this.idleTicks = 0
    const full = !this.#write(this.#take())
    if ((full || this.#encodedBackedUp()) && !this.#blocked) {
      this.#blocked = true
      // Behind an encoder, wait for whichever is full: its drain lets the other flow again.
      ;(full ? this.#out : this.#res).on('drain', onDrain)
      const { writeTimeout } = this.#settings
      if (writeTimeout === false) return
      const deadlines = this.#deadlines ??= newDeadlines(undefined)
      deadlines.blockedAt = performance.now()
      deadlines.writeTimer ??= setTimeout(onWriteDeadline, writeTimeout, this).unref()
    }
  }

  /** A timer for the end that comes first: `maxLifetime` (90 to 100% of it, at random) or `endAt`. */
  #armLifetime (): void {
    const { maxLifetime } = this.#settings
    let ms = maxLifetime === false ? Infinity : maxLifetime * (0.9 + Math.random() * 0.1)
    let reason: EndReason = 'max-lifetime'
    const endAt = this.#deadlines?.endAt
    if (endAt !== undefined && endAt - Date.now() <= ms) {
      ms = endAt - Date.now()
      reason = 'expired'
    }
    if (ms === Infinity) return
    const timer = setTimeout(onLifetime, Math.min(Math.max(ms, 0), MAX_TIMER_DELAY), this).unref()
    const deadlines = this.#deadlines ??= newDeadlines(undefined)
    deadlines.lifetime = { timer, due: performance.now() + ms, reason }
  }

  #write (chunk: string | Buffer): boolean {
    this.bytes += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length
    // Not corked around the write: on Node 22 a write inside res.cork() reports room the socket does
    // not have, and a client that stops reading is never seen as slow (specs in backpressure,
    // channels-slow and lifetimes failed there, passed on Node 20).
    return this.#out.write(chunk)
  }
}

/** `retry:` for a closing server: the usual delay plus up to as much again (at least 1 s) at random. */
export function closingRetry (retry: number | undefined): number {
  const base = retry ?? 3000
  return base + Math.floor(Math.random() * Math.max(base, 1000))
}
