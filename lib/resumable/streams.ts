import type { FastifyBaseLogger, FastifyReply } from 'fastify'
import { setTimeout as sleep } from 'node:timers/promises'
import type { SseChannel } from '../channels/channel.js'
import { compareIds, ID_PATTERN } from '../channels/backend.js'
import type { ChannelHub } from '../channels/hub.js'
import { closeSource } from '../close-source.js'
import type { SseContext } from '../context.js'
import { describe } from '../describe.js'
import { FST_SSE_CHANNELS_CLOSED, FST_SSE_INVALID_OPTION, FST_SSE_STREAM_EXISTS, FST_SSE_UNKNOWN_STREAM } from '../errors.js'
import { openSourceNow, type SseIterator, type SseSource } from '../source.js'
import type { ChannelMessage } from '../types.js'
import { channelOf, checkKey, CONTROL, isKey } from './keys.js'
import { GenerationSlots, type GenerationLimits } from './limits.js'
import { raceAbort, STOPPED } from './race-abort.js'
import { readFrom, replayThenLost, type Reading } from './readers.js'

// Resumable streams: a generation (LLM tokens, a long job) that outlives the connection that started
// it. Its output is published to a channel of its own as it is produced (memory, or Redis for every
// instance), so any client, on any instance, can read it from the start or from its Last-Event-ID.
// It runs until it is done, cancelled, or `maxDuration` passed, whoever listens; then its end is
// published as an `sse-end` event and recorded for `ttl`, so a client that received the end is told to
// stop (204) instead of starting it again.
//
// One record per key, shared through the backend: `start` (the id readers read after), `until` (when
// a reader stops waiting for an end that may never come: the app running it crashed, or Redis failed
// it), `end` (the end's id, once published). It is made atomically, so one app anywhere runs a key.

export interface ResumableOptions {
  /** The longest a generation runs, readers or not; it then ends with reason `timeout`. @default 300000 (5 min) */
  maxDuration?: number
  /** How long a finished stream's record is kept (a client coming back then is told to stop). @default 600000 (10 min) */
  ttl?: number
}

/**
 * Why a generation ended, as its `sse-end` event says. `lost`: its end never came (the app running it
 * stopped, or could not publish), so a reader gave up `maxDuration` plus 10 s after the start.
 */
export type ResumableEnd = 'done' | 'error' | 'cancelled' | 'timeout' | 'server-closing' | 'lost'

const DEFAULT_MAX_DURATION = 300_000
const DEFAULT_TTL = 600_000
/**
 * After maxDuration, how long the app running a generation has to publish its end before readers give
 * up: its start took up to two Redis commands (2 s each, at worst), its end is one more, tried again.
 */
const END_GRACE = 10_000
const MAX_TIMER_DELAY = 2 ** 31 - 1
/** A value or an end that could not be published is tried again this long after the last try (doubling, capped). */
const RETRY_FIRST_MS = 100
const RETRY_MAX_MS = 2000
/** A reader that could not be served (the backend failing) comes back after 2 to 4 s. */
const UNAVAILABLE_RETRY_MS = 2000
/**
 * How long a value whose publish failed for want of the backend is tried again: under Redis's window
 * for a publish's own key (10 s), so a try after an unknown outcome is never stored twice.
 */
const TOKEN_RETRY_MS = 8000

function durationOf (name: string, value: unknown, fallback: number, max: number): number {
  if (value === undefined) return fallback
  if (typeof value === 'number' && Number.isSafeInteger(value) && value > 0 && value <= max) return value
  throw new FST_SSE_INVALID_OPTION(name, `use a positive integer of milliseconds up to ${max}`)
}

function isTransient (err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code
  return code === 'FST_SSE_BACKEND_UNAVAILABLE' || code === 'FST_SSE_PUBLISH_OUTCOME_UNKNOWN'
}

interface Run {
  readonly controller: AbortController
  /** Settles once the generation is over: its end published (or given up on). */
  readonly finished: Promise<void>
}

/** A generation's settings, fixed when it starts. */
interface Plan {
  readonly key: string
  readonly channel: SseChannel
  readonly source: SseSource
  readonly context: SseContext
  readonly controller: AbortController
  /** When it is stopped (reason `timeout`), Date.now() ms. */
  readonly deadline: number
  readonly ttl: number
  readonly until: number
  /** The start marker's id: names this generation (a key can be used again once its record expired). */
  readonly start: string
}

const SUCCEEDED = Symbol('succeeded')

/**
 * `attempt` until it succeeds (SUCCEEDED), waiting 100 ms, doubling to 2 s, between tries; the last
 * failure once `giveUp(failure, next wait)` says so, or once `signal` aborted during a wait.
 */
async function retried (attempt: () => Promise<unknown>, giveUp: (failure: unknown, wait: number) => boolean,
  signal?: AbortSignal): Promise<unknown> {
  const once = (): Promise<unknown> => attempt().then(() => SUCCEEDED, (err: unknown) => err)
  let wait = RETRY_FIRST_MS
  for (let outcome = await once(); outcome !== SUCCEEDED; outcome = await once()) {
    if (giveUp(outcome, wait)) return outcome
    await sleep(wait, undefined, { signal }).catch(() => {})
    if (signal?.aborted === true) return outcome
    wait = Math.min(wait * 2, RETRY_MAX_MS)
  }
  return SUCCEEDED
}

/** A generation's source as its run knows it: open (to be finalized when stopped), and its finalization. */
interface SourceState {
  iterator: SseIterator | undefined
  finalized: Promise<void> | undefined
}

/** The resumable streams of one app: those it runs, and how any stream of the backend is read. */
export class ResumableStreams {
  readonly #hub: ChannelHub
  readonly #log: FastifyBaseLogger
  readonly #runs = new Map<string, Run>()
  readonly #finalizing = new Set<Promise<void>>()
  #listening = false
  #closing = false

  readonly #slots: GenerationSlots

  constructor (hub: ChannelHub, log: FastifyBaseLogger, limits: GenerationLimits) {
    this.#hub = hub
    this.#log = log
    this.#slots = new GenerationSlots(limits)
  }

  /**
   * A source for `reply.sse()` that starts the generation `source` under `key` when the stream starts,
   * detached from it, and streams it from the start. The generation is given a context of its own:
   * its signal aborts on cancel, timeout or close, never when this client leaves.
   */
  start (key: string, source: SseSource, options: ResumableOptions = {}): (ctx: SseContext) => Promise<AsyncIterable<ChannelMessage>> {
    checkKey(key)
    const maxDuration = durationOf('maxDuration', options.maxDuration, DEFAULT_MAX_DURATION, MAX_TIMER_DELAY - END_GRACE)
    const ttl = durationOf('ttl', options.ttl, DEFAULT_TTL, MAX_TIMER_DELAY)
    return async ctx => {
      if (this.#closing) throw new FST_SSE_CHANNELS_CLOSED()
      if (this.#runs.has(key)) throw new FST_SSE_STREAM_EXISTS(key)
      const release = this.#slots.hold(ctx.request)
      // Held here before the first await: a second start on this app, or a cancel, meets it at once.
      const controller = new AbortController()
      let finish!: () => void
      this.#runs.set(key, { controller, finished: new Promise(resolve => { finish = resolve }) })
      const channel = this.#hub.own(channelOf(key))
      const startedAt = Date.now()
      const until = startedAt + maxDuration + END_GRACE
      let start: string
      try {
        this.#listen()
        // A comment that dispatches nothing, marking the start: every reader reads after it. One left by
        // an app that then lost the race for the record below is as harmless.
        start = await channel.publish({ comment: 'resumable stream start' })
        if (!await this.#hub.createRecord(channel.name, { start, until: String(until) }, until - Date.now() + ttl)) {
          throw new FST_SSE_STREAM_EXISTS(key)
        }
      } catch (err) {
        this.#runs.delete(key)
        finish()
        release()
        throw err
      }
      this.#hub.keep(channel.name, until + ttl)
      const context: SseContext = { signal: controller.signal, lastEventId: undefined, request: ctx.request }
      // maxDuration counts from before the start's commands: a slow backend does not move the readers'
      // deadline past the generation's.
      const deadline = startedAt + maxDuration
      this.#run({ key, channel, source, context, controller, deadline, ttl, until, start }).then(({ finalized }) => {
        this.#runs.delete(key)
        finish()
        return finalized
      }).then(release, release) // #run logs what fails; nothing rejects
      return readFrom({ channel, from: start, until, start }, ctx.signal)
    }
  }

  /**
   * `reply.sseResume(key)`: the stream `key` from the client's Last-Event-ID (or from its start), to
   * its end. 404 when there is no such stream; 204 (an EventSource stops) once its end was received,
   * or once it is past waiting for an end that never came.
   */
  async resume (reply: FastifyReply, key: string): Promise<void> {
    let record: Readonly<Record<string, string>> | undefined
    try {
      // Keys come from URLs: one that cannot be a stream's is simply not one.
      record = isKey(key) ? await this.#hub.readRecord(channelOf(key)) : undefined
    } catch (err) {
      // The backend failing for a moment (Redis restarting): an EventSource answered with an error
      // status would stop for good, so it is told to come back, as a refused stream is.
      reply.request.log.warn({ err }, 'sse resumable stream not read: backend unavailable')
      reply.header('retry-after', String(UNAVAILABLE_RETRY_MS / 1000))
      return reply.sse([{ comment: 'unavailable', retry: UNAVAILABLE_RETRY_MS + Math.floor(Math.random() * UNAVAILABLE_RETRY_MS) }])
    }
    if (record?.start === undefined) {
      reply.code(404).send(new FST_SSE_UNKNOWN_STREAM(describe(key)))
      return
    }
    const last = reply.request.lastEventId
    const ended = record.end !== undefined
    const until = ended ? Infinity : Number(record.until)
    // The start's id comes only with a lost end: a client holding it was told to stop, even if the real
    // end came later.
    if (last !== undefined && (last === record.end || last === record.start || Date.now() >= until)) {
      reply.code(204).send()
      return
    }
    const channel = this.#hub.own(channelOf(key))
    // An id that is not one of this generation's (forged, or from one that used the key before) reads
    // from the start: it cannot say what the client has.
    const from = last !== undefined && ID_PATTERN.test(last) && compareIds(last, record.start) > 0 ? last : record.start
    const reading: Reading = { channel, from, until, start: record.start }
    return reply.sse(ctx => Date.now() >= until ? replayThenLost(channel, reading) : readFrom(reading, ctx.signal))
  }

  /**
   * Stop the generation `key` wherever it runs: here at once, on other apps through the backend.
   * Resolves to whether it was running (false: unknown, or over).
   */
  async cancel (key: string): Promise<boolean> {
    checkKey(key)
    const run = this.#runs.get(key)
    if (run !== undefined) {
      run.controller.abort('cancelled')
      return true
    }
    const record = await this.#hub.readRecord(channelOf(key))
    if (record?.start === undefined || record.end !== undefined || Date.now() >= Number(record.until)) return false
    await this.#hub.channel(CONTROL).publishData(key)
    return true
  }

  /** The app is closing: every generation here ends (`server-closing`), its end published, its source finalized. */
  async close (): Promise<void> {
    this.#closing = true
    const runs = [...this.#runs.values()]
    for (const run of runs) run.controller.abort('server-closing')
    await Promise.all(runs.map(run => run.finished))
    await Promise.all(this.#finalizing)
  }

  /** A source being finalized after its end: the app's close waits for it (within its grace). */
  #track (finalized: Promise<void>): Promise<void> {
    this.#finalizing.add(finalized)
    return finalized.finally(() => this.#finalizing.delete(finalized))
  }

  /** Listen, once, for cancellations published by other apps. */
  #listen (): void {
    if (this.#listening) return
    this.#listening = true
    const control = this.#hub.channel<string>(CONTROL).subscribe()
    ;(async () => {
      for await (const { data } of control) this.#runs.get(String(data))?.controller.abort('cancelled')
    })().catch(err => { this.#log.error({ err }, 'sse resumable streams stopped listening for cancellations') })
  }

  /**
   * Resolves once the end is out, to the source's finalization (settled once it is finalized; in an
   * object, or the run's promise would wait for it).
   */
  async #run (plan: Plan): Promise<{ finalized?: Promise<void> }> {
    const { signal } = plan.context
    const timer = setTimeout(() => { plan.controller.abort('timeout') }, Math.max(plan.deadline - Date.now(), 0))
    const source: SourceState = { iterator: undefined, finalized: undefined }
    let reason: ResumableEnd = 'done'
    try {
      await this.#produce(plan, source)
    } catch (err) {
      reason = 'error'
      this.#log.error({ err, stream: plan.key }, 'sse resumable stream failed')
    }
    clearTimeout(timer)
    // Stopped: the reason it was stopped for, whatever failed after.
    if (signal.aborted) reason = signal.reason as ResumableEnd
    // Stopped, or its channel failed: finalized once it gives control back, not waited for by its
    // end nor by its key (free again once the record expires); only the app's close waits for it.
    if (source.iterator !== undefined) source.finalized = this.#track(closeSource(source.iterator, this.#log))
    await this.#end(plan, reason)
    return { finalized: source.finalized }
  }

  /**
   * Open the source and publish what it yields until it is done or stopped. A source that ignores its
   * signal is not waited for: the end goes out at once, and it is finalized when it gives control back.
   */
  async #produce (plan: Plan, source: SourceState): Promise<void> {
    const { signal } = plan.context
    // Cancelled while it was starting: never opened.
    if (signal.aborted) return
    const opening = Promise.resolve(openSourceNow(plan.source, plan.context))
    const opened = await raceAbort(opening, signal)
    if (opened === STOPPED) {
      source.finalized = this.#track(opening.then(late => closeSource(late, this.#log), () => {}))
      return
    }
    const iterator = source.iterator = opened
    const next = (): Promise<IteratorResult<unknown> | typeof STOPPED> => raceAbort(Promise.resolve(iterator.next()), signal)
    let n = 0
    for (let result = await next(); result !== STOPPED; result = await next()) {
      if (result.done === true) {
        source.iterator = undefined
        return
      }
      await this.#publish(plan, result.value, n++)
    }
  }

  /**
   * Publish the `n`th value; while the backend is unavailable (Redis restarting, a connection being
   * made again), try again under the same attempt key (stored once) for up to TOKEN_RETRY_MS, or
   * until the generation is stopped.
   */
  async #publish (plan: Plan, value: unknown, n: number): Promise<void> {
    const { channel, context: { signal } } = plan
    const attempt = plan.start + ':' + n
    const giveUpAt = Date.now() + TOKEN_RETRY_MS
    // Closing aborts the signal too: the wait between tries is cut short, and this value stays unpublished.
    const failure = await retried(() => channel.publishAttempt(value, attempt),
      (err, wait) => !isTransient(err) || Date.now() + wait >= giveUpAt, signal)
    if (failure !== SUCCEEDED && !signal.aborted) throw failure
  }

  /**
   * Publish the end and record its id, trying again (the backend may be failing: Redis) until readers
   * would give up anyway; not while the app closes, which waits for it.
   */
  async #end (plan: Plan, reason: ResumableEnd): Promise<void> {
    const { key, channel, ttl } = plan
    // Under an idempotency key: a try whose outcome was unknown is not published twice.
    const failure = await retried(() => channel.publishEnd(reason, 'sse-end ' + plan.start, ttl),
      (_err, wait) => this.#closing || Date.now() + wait >= plan.until)
    if (failure === SUCCEEDED) this.#hub.keep(channel.name, Date.now() + ttl)
    else this.#log.error({ err: failure, stream: key, reason }, 'sse resumable stream end not published')
  }
}
