import type { FastifyBaseLogger, FastifyReply } from 'fastify'
import type { SseChannel } from './channels/channel.js'
import { END_EVENT } from './channels/gap.js'
import type { ChannelHub } from './channels/hub.js'
import { closeSource } from './close-source.js'
import type { SseContext } from './context.js'
import { describe } from './describe.js'
import { FST_SSE_INVALID_OPTION, FST_SSE_INVALID_STREAM_KEY, FST_SSE_STREAM_EXISTS, FST_SSE_UNKNOWN_STREAM } from './errors.js'
import { openSourceNow, type SseIterator, type SseSource } from './source.js'
import type { ChannelMessage } from './types.js'

// Resumable streams: a generation (LLM tokens, a long job) that outlives the connection that started
// it. Its output is published to a channel of its own as it is produced (memory, or Redis for every
// instance), so any client, on any instance, can read it from the start or from its Last-Event-ID.
// It runs until it is done, cancelled, or `maxDuration` passed, whoever listens; then its end is
// published as an `sse-end` event and recorded for `ttl`, so a client that received the end is told to
// stop (204) instead of starting it again.

export interface ResumableOptions {
  /** The longest a generation runs, readers or not; it then ends with reason `timeout`. @default 300000 (5 min) */
  maxDuration?: number
  /** How long a finished stream's record is kept (a client coming back then is told to stop). @default 600000 (10 min) */
  ttl?: number
}

/** Why a generation ended, as its `sse-end` event says. */
export type ResumableEnd = 'done' | 'error' | 'cancelled' | 'timeout' | 'server-closing'

const DEFAULT_MAX_DURATION = 300_000
const DEFAULT_TTL = 600_000
const MAX_TIMER_DELAY = 2 ** 31 - 1
const MAX_KEY_LENGTH = 150
/** Every app running generations listens here for cancellations of the ones it runs. */
const CONTROL = 'sse-resumable-control'

function channelOf (key: string): string {
  return 'sse-resumable:' + key
}

function checkKey (key: unknown): asserts key is string {
  if (typeof key !== 'string' || key === '' || key.length > MAX_KEY_LENGTH) throw new FST_SSE_INVALID_STREAM_KEY(describe(key))
}

function durationOf (name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value === 'number' && Number.isSafeInteger(value) && value > 0 && value <= MAX_TIMER_DELAY) return value
  throw new FST_SSE_INVALID_OPTION(name, `use a positive integer of milliseconds up to ${MAX_TIMER_DELAY}`)
}

/**
 * A channel's events from `from` on, until the stream's end (which it includes): the stream of one
 * reader. It ends with its connection (`signal`) too.
 */
async function * readFrom (channel: SseChannel, from: string, signal: AbortSignal): AsyncGenerator<ChannelMessage> {
  for await (const message of channel.subscribe({ lastEventId: from, signal })) {
    yield message
    if (message.event === END_EVENT) return
  }
}

interface Run {
  readonly controller: AbortController
  /** Settles once the end is published and recorded (or could not be). */
  readonly finished: Promise<void>
}

/** The resumable streams of one app: those it runs, and how any stream of the backend is read. */
export class ResumableStreams {
  readonly #hub: ChannelHub
  readonly #log: FastifyBaseLogger
  readonly #runs = new Map<string, Run>()
  #listening = false

  constructor (hub: ChannelHub, log: FastifyBaseLogger) {
    this.#hub = hub
    this.#log = log
  }

  /**
   * A source for `reply.sse()` that starts the generation `source` under `key` when the stream starts,
   * detached from it, and streams it from the start. The generation is given a context of its own:
   * its signal aborts on cancel, timeout or close, never when this client leaves.
   */
  start (key: string, source: SseSource, options: ResumableOptions = {}): (ctx: SseContext) => Promise<AsyncIterable<ChannelMessage>> {
    checkKey(key)
    const maxDuration = durationOf('maxDuration', options.maxDuration, DEFAULT_MAX_DURATION)
    const ttl = durationOf('ttl', options.ttl, DEFAULT_TTL)
    return async ctx => {
      if (this.#runs.has(key)) throw new FST_SSE_STREAM_EXISTS(key)
      const controller = new AbortController()
      let started!: () => void
      const startedRun = new Promise<void>(resolve => { started = resolve })
      this.#runs.set(key, { controller, finished: startedRun })
      const channel = this.#hub.own(channelOf(key))
      let startId: string
      try {
        this.#listen()
        // A comment that dispatches nothing, marking the start: every reader reads after it.
        startId = await channel.publish({ comment: 'resumable stream start' })
        await this.#hub.saveRecord(channel.name, { start: startId }, maxDuration + ttl)
      } catch (err) {
        this.#runs.delete(key)
        started()
        throw err
      }
      const context: SseContext = { signal: controller.signal, lastEventId: undefined, request: ctx.request }
      const finished = this.#run(key, channel, source, context, controller, maxDuration, ttl)
      this.#runs.set(key, { controller, finished })
      started()
      return readFrom(channel, startId, ctx.signal)
    }
  }

  /**
   * `reply.sseResume(key)`: the stream `key` from the client's Last-Event-ID (or from its start), to
   * its end. 404 when there is no such stream; 204 (an EventSource stops) once its end was received.
   */
  async resume (reply: FastifyReply, key: string): Promise<void> {
    checkKey(key)
    const name = channelOf(key)
    const record = await this.#hub.readRecord(name)
    if (record?.start === undefined) {
      reply.code(404).send(new FST_SSE_UNKNOWN_STREAM(describe(key)))
      return
    }
    const last = reply.request.lastEventId
    if (record.end !== undefined && last === record.end) {
      reply.code(204).send()
      return
    }
    const channel = this.#hub.own(name)
    return reply.sse(ctx => readFrom(channel, last ?? record.start!, ctx.signal))
  }

  /** Stop the generation `key` wherever it runs: here at once, on other apps through the backend. */
  async cancel (key: string): Promise<void> {
    checkKey(key)
    const run = this.#runs.get(key)
    if (run !== undefined) {
      run.controller.abort('cancelled')
      return
    }
    await this.#hub.channel(CONTROL).publishData(key)
  }

  /** The app is closing: every generation here ends (`server-closing`), its end published. */
  async close (): Promise<void> {
    const runs = [...this.#runs.values()]
    for (const run of runs) run.controller.abort('server-closing')
    await Promise.all(runs.map(run => run.finished))
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

  async #run (key: string, channel: SseChannel, source: SseSource, context: SseContext, controller: AbortController,
    maxDuration: number, ttl: number): Promise<void> {
    const { signal } = context
    const timer = setTimeout(() => { controller.abort('timeout') }, maxDuration).unref()
    let reason: ResumableEnd = 'done'
    let iterator: SseIterator | undefined
    let done = false
    try {
      iterator = await openSourceNow(source, context)
      for (;;) {
        const result = await iterator.next()
        if (result.done === true) {
          done = true
          break
        }
        if (signal.aborted) break
        await channel.publish(result.value)
      }
    } catch (err) {
      if (!signal.aborted) {
        reason = 'error'
        this.#log.error({ err, stream: key }, 'sse resumable stream failed')
      }
    } finally {
      clearTimeout(timer)
      if (!done && iterator !== undefined) await closeSource(iterator, this.#log)
    }
    if (signal.aborted) reason = signal.reason as ResumableEnd
    try {
      const end = await channel.publishEnd(reason)
      await this.#hub.saveRecord(channel.name, { end }, ttl)
    } catch (err) {
      this.#log.error({ err, stream: key }, 'sse resumable stream end not published')
    } finally {
      this.#runs.delete(key)
    }
  }
}
