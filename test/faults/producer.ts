import { setTimeout as sleep } from 'node:timers/promises'
import type { Channel } from '../../lib/index.js'
import { compareIds } from '../../lib/channels/backend.js'
import { deferred } from '../fixtures/wait.js'

// The producer of the fault-injection suite: one event at a time, in order, at a steady rate, through
// the apps that are up in turn. Every event has an idempotency key and is retried with that same key
// until a publish resolves: then, and only then, it counts as published, with the id it resolved to.

/** `publish(value, { idempotencyKey })`, as issue 8 adds it (until then the key is ignored, and a retry stores a copy). */
type KeyedPublish = (value: unknown, options: { idempotencyKey: string }) => Promise<string>

/** What a retry is the answer to: the outcome is unknown (same key, always), nothing was stored, or this app closed. */
const RETRYABLE = new Set(['FST_SSE_PUBLISH_OUTCOME_UNKNOWN', 'FST_SSE_BACKEND_UNAVAILABLE', 'FST_SSE_CHANNELS_CLOSED'])
/** After this long failing on one app, an event is tried on the next one (and the app is reported). */
const STALL_MS = 8000
/** After this long, an event is given up and the producer stops: the suite fails. */
const GIVE_UP_MS = 30_000
const FIRST_BACKOFF_MS = 10
const MAX_BACKOFF_MS = 400

export interface Target {
  readonly name: string
  readonly channel: Channel
}

export interface ProducerOptions {
  /** The apps up now, in a stable order. */
  readonly targets: () => readonly Target[]
  readonly intervalMs: number
  /** Keys are this followed by the sequence number. */
  readonly keyPrefix: string
}

export class Producer {
  /** The id each event's publish resolved to, by sequence number. */
  readonly ids: string[] = []
  /** When each publish resolved, by sequence number. */
  readonly at: number[] = []
  /** Publish calls that rejected, by `<app>: <code>`. */
  readonly failures = new Map<string, number>()
  /** What happened to each event that needed more than one publish call, by sequence number, in words. */
  readonly retried = new Map<number, string[]>()
  /** Events that kept failing on one app, in words. */
  readonly stalls: string[] = []
  /** Events whose id did not come after the one before, in words. */
  readonly backwards: string[] = []
  /** Why the producer stopped before it was told to. */
  error: Error | undefined
  readonly #options: ProducerOptions
  #stopping = false
  #abandoned = false
  #running: Promise<void> | undefined
  #onSend: Array<() => void> = []
  #onPublished: Array<() => void> = []
  /** Settles once the publish in flight is over (resolved or failed). */
  #publishing: Promise<unknown> = Promise.resolve()
  /** While held, no new publish begins; resolved by release(). */
  #held: { promise: Promise<void>, resolve: () => void } | undefined

  constructor (options: ProducerOptions) {
    this.#options = options
  }

  start (): void {
    this.#running = this.#run().catch(err => { this.error = err })
  }

  /**
   * Resolves right after the next publish is sent, before Redis can have answered: a fault injected
   * then finds a publish in flight (whose outcome the producer cannot know). Or after `ms`, if none is.
   */
  nextSend (ms: number): Promise<void> {
    return next(this.#onSend, ms)
  }

  /** Resolves right after the next publish resolves: a fault injected then finds no publish in flight. Or after `ms`. */
  nextPublished (ms: number): Promise<void> {
    return next(this.#onPublished, ms)
  }

  /**
   * Publishes nothing new until release(); resolves once the publish in flight (if any) is over. A
   * fault that must find this producer with no outcome unknown (Redis losing its data) holds it.
   */
  async hold (): Promise<void> {
    this.#held ??= deferred()
    await this.#publishing
  }

  release (): void {
    this.#held?.resolve()
    this.#held = undefined
  }

  /** Stops after the event in flight is published (an event left with its outcome unknown would be a copy in waiting). */
  async stop (): Promise<void> {
    this.#stopping = true
    await this.#running
  }

  /** Stops at once, the event in flight left as it is (a test that failed midway is being torn down). */
  abandon (): void {
    this.#stopping = true
    this.#abandoned = true
  }

  async #run (): Promise<void> {
    const { intervalMs } = this.#options
    let due = Date.now()
    while (!this.#stopping) {
      if (this.#held !== undefined) {
        await this.#held.promise
        continue
      }
      const seq = this.ids.length
      const publishing = this.#publish(seq)
      this.#publishing = publishing.catch(() => {})
      const id = await publishing
      const previous = this.ids[seq - 1]
      if (previous !== undefined && compareIds(id, previous) <= 0) {
        this.backwards.push(`#${seq} got ${id}, after ${previous} for #${seq - 1}`)
      }
      this.ids.push(id)
      this.at.push(Date.now())
      for (const published of this.#onPublished.splice(0)) published()
      // A steady rate, without a burst to catch up after an outage.
      due = Math.max(due + intervalMs, Date.now())
      await sleep(due - Date.now())
    }
  }

  async #publish (seq: number): Promise<string> {
    const value = { event: 'tick', data: { seq } }
    const key = this.#options.keyPrefix + seq
    const begun = Date.now()
    let turn = seq
    let onThisAppSince = begun
    let backoff = FIRST_BACKOFF_MS
    let last = 'no app was up'
    for (;;) {
      const targets = this.#options.targets()
      const target = targets[turn % Math.max(targets.length, 1)]
      if (target !== undefined) {
        const publish = target.channel.publish.bind(target.channel) as unknown as KeyedPublish
        try {
          const published = publish(value, { idempotencyKey: key })
          for (const sent of this.#onSend.splice(0)) sent()
          return await published
        } catch (err) {
          const code = (err as { code?: unknown }).code
          if (typeof code !== 'string' || !RETRYABLE.has(code)) throw err
          last = `${target.name}: ${code}`
          this.failures.set(last, (this.failures.get(last) ?? 0) + 1)
          const history = this.retried.get(seq) ?? []
          history.push(`${new Date().toISOString().slice(17, 23)} ${last} (${(err as Error).message})`)
          this.retried.set(seq, history)
        }
      }
      if (this.#abandoned) throw new Error(`abandoned at event #${seq}`)
      const now = Date.now()
      if (now - begun > GIVE_UP_MS) throw new Error(`event #${seq} was not published within ${GIVE_UP_MS} ms (last: ${last})`)
      if (now - onThisAppSince > STALL_MS) {
        this.stalls.push(`#${seq} failed for ${now - onThisAppSince} ms (last: ${last})`)
        turn++
        onThisAppSince = now
      }
      await sleep(backoff)
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS)
    }
  }
}

async function next (waiting: Array<() => void>, ms: number): Promise<void> {
  let resolve!: () => void
  const happened = new Promise<void>(_resolve => { resolve = _resolve })
  waiting.push(resolve)
  const timer = setTimeout(resolve, ms)
  await happened
  clearTimeout(timer)
}
