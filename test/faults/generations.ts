import { setTimeout as sleep } from 'node:timers/promises'
import { EventSource, type FetchLike } from 'eventsource'
import type { Random } from '../fixtures/random.js'
import { GAP_EVENT, type Received } from './checker.js'
import type { Balancer } from './clients.js'
import type { PublishWatch } from './injector.js'

// Resumable streams under faults: generations that yield numbered tokens at a steady pace, and the
// readers of each (real `eventsource` clients behind the suite's balancer) that leave and resume with
// their Last-Event-ID on any app until they receive the end. What a generation knows of its own tokens
// is what the checker needs: a token is published for sure once the generation is asked for the next
// one (app.sse.resumable publishes each token before it pulls the next), and the last one yielded may
// have an unknown outcome when the generation ended on a failed publish.

export const END_EVENT = 'sse-end'

export interface GenerationOptions {
  readonly tokens: number
  readonly paceMs: number
}

export class Generation {
  readonly key: string
  /** When the start request was sent (Date.now()). */
  readonly startedAt = Date.now()
  /** The app that ran it (its route handler says so). */
  runner: string | undefined
  /** The highest token yielded; -1 before the first. */
  yielded = -1
  /** The highest token whose publish resolved (the generation was asked for the next one); -1 before. */
  confirmed = -1
  /** Why its signal aborted, if it did. */
  aborted: string | undefined
  /** Whether its finally ran. */
  finalized = false
  readonly #options: GenerationOptions
  readonly #onYield: () => void

  constructor (key: string, options: GenerationOptions, onYield: () => void) {
    this.key = key
    this.#options = options
    this.#onYield = onYield
  }

  /** The source handed to app.sse.resumable on app `runner`. */
  source (runner: string) {
    this.runner = runner
    const generation = this
    const { tokens, paceMs } = this.#options
    return async function * ({ signal }: { signal: AbortSignal }): AsyncGenerator<{ event: string, data: { n: number } }> {
      signal.addEventListener('abort', () => { generation.aborted = String(signal.reason) }, { once: true })
      try {
        for (let n = 0; n < tokens; n++) {
          await sleep(paceMs, undefined, { signal })
          generation.yielded = n
          generation.#onYield()
          yield { event: 'token', data: { n } }
          generation.confirmed = n
        }
      } finally {
        generation.finalized = true
      }
    }
  }
}

/** Every generation of a run, and the moment one of them publishes (for faults timed around a publish). */
export class Generations implements PublishWatch {
  readonly all: Generation[] = []
  readonly #options: GenerationOptions
  #onSend: Array<() => void> = []
  #count = 0

  constructor (options: GenerationOptions) {
    this.#options = options
  }

  create (): Generation {
    const generation = new Generation(`g${this.#count++}`, this.#options, () => {
      // The token's publish is sent once the run takes it, a few microtasks on: strike after them.
      const waiting = this.#onSend.splice(0)
      if (waiting.length > 0) setImmediate(() => { for (const sent of waiting) sent() })
    })
    this.all.push(generation)
    return generation
  }

  get (key: string): Generation | undefined {
    return this.all.find(generation => generation.key === key)
  }

  nextSend (ms: number): Promise<void> {
    return next(this.#onSend, ms)
  }

  /** A token's publish resolves within a pace of the next yield: the next yield is close enough. */
  nextPublished (ms: number): Promise<void> {
    return next(this.#onSend, ms)
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

/** The end a reader received: its reason, its id (the reader's own last id when the end has none), when. */
export interface End {
  readonly reason: string
  readonly id: string
  readonly at: number
}

export interface ReaderRecord {
  readonly name: string
  readonly received: readonly Received[]
  readonly end: End | undefined
  /** The status a resume with the end's id was answered with (204: told to stop); undefined if none came. */
  readonly statusAfterEnd: number | undefined
  /** Told to stop (204) before it received an end. */
  readonly stoppedWithoutEnd: boolean
  /** When it stopped reading for good (Date.now()); undefined while it still reads. */
  readonly finishedAt: number | undefined
}

export interface ReaderOptions {
  /** How long a reader keeps one EventSource before leaving and coming back, in ms. */
  readonly stayMs: readonly [min: number, max: number]
  /** How long it keeps asking, after the end, for the 204 that tells it to stop (Redis may be down). */
  readonly confirmMs: number
}

/** How long a reader waits before it comes back after leaving, or after its EventSource gave up, in ms. */
const AWAY_MS: readonly [number, number] = [0, 150]
const EVENTS = ['token', GAP_EVENT, END_EVENT, 'message']

/** One reader of one generation: from the start, then from its Last-Event-ID, on any app, until the end. */
export class Reader implements ReaderRecord {
  readonly name: string
  readonly received: Received[] = []
  end: End | undefined
  statusAfterEnd: number | undefined
  stoppedWithoutEnd = false
  finishedAt: number | undefined
  requests = 0
  comebacks = 0
  /** Why an EventSource gave up (a status other than 200...), by message. */
  readonly failures = new Map<string, number>()
  readonly #path: string
  readonly #balancer: Balancer
  readonly #random: Random
  readonly #options: ReaderOptions
  #lastId: string | undefined
  #lastStatus: number | undefined
  #source: EventSource | undefined
  #timer: NodeJS.Timeout | undefined
  #stopped = false

  constructor (name: string, key: string, balancer: Balancer, random: Random, options: ReaderOptions) {
    this.name = name
    this.#path = '/gen/' + key
    this.#balancer = balancer
    this.#random = random
    this.#options = options
  }

  start (): void {
    this.#open()
    this.#stayThenLeave()
  }

  stop (): void {
    this.#stopped = true
    clearTimeout(this.#timer)
    this.#source?.close()
    this.#source = undefined
  }

  #fetch: FetchLike = async (_url, init) => {
    const base = this.#balancer.pick(this.#random)
    if (base === undefined) throw new TypeError('no app is up')
    this.requests++
    const headers = { ...init.headers }
    if (this.#lastId !== undefined) headers['Last-Event-ID'] = this.#lastId
    const response = await fetch(base + this.#path, { ...init, headers })
    this.#lastStatus = response.status
    return response
  }

  #open (): void {
    const source = new EventSource('http://balancer.invalid' + this.#path, { fetch: this.#fetch })
    this.#source = source
    const record = (event: MessageEvent<string>): void => {
      if (source !== this.#source) return
      const at = Date.now()
      this.received.push({ id: event.lastEventId, event: event.type, data: event.data, at })
      this.#lastId = event.lastEventId
      if (event.type !== END_EVENT) return
      let reason = '?'
      try {
        reason = String((JSON.parse(event.data) as { reason?: unknown }).reason)
      } catch {}
      this.end = { reason, id: event.lastEventId, at }
      this.stop()
      this.#confirmStop().catch(() => {})
    }
    for (const name of EVENTS) source.addEventListener(name, record)
    source.addEventListener('error', event => {
      if (source !== this.#source || source.readyState !== source.CLOSED) return
      if (this.#lastStatus === 204) {
        // Told to stop before it had an end: the server was past waiting for one.
        this.stoppedWithoutEnd = true
        this.finishedAt = Date.now()
        this.stop()
        return
      }
      this.failures.set(event.message ?? 'error', (this.failures.get(event.message ?? 'error') ?? 0) + 1)
      this.#comeBack()
    })
  }

  /** Resume with the end's id, as an EventSource would, until an app answers (204 is the right answer). */
  async #confirmStop (): Promise<void> {
    const deadline = Date.now() + this.#options.confirmMs
    while (Date.now() < deadline) {
      const base = this.#balancer.pick(this.#random)
      if (base !== undefined) {
        try {
          const response = await fetch(base + this.#path,
            { headers: { accept: 'text/event-stream', 'last-event-id': this.end!.id }, signal: AbortSignal.timeout(3000) })
          await response.body?.cancel()
          this.statusAfterEnd = response.status
          // An app that could not read the record (Redis down, the app closing) is asked again.
          if (response.status < 500) break
        } catch {}
      }
      await sleep(100)
    }
    this.finishedAt = Date.now()
  }

  #stayThenLeave (): void {
    this.#timer = setTimeout(() => {
      this.comebacks++
      this.#comeBack()
      this.#stayThenLeave()
    }, this.#random.int(...this.#options.stayMs))
  }

  #comeBack (): void {
    this.#source?.close()
    this.#source = undefined
    setTimeout(() => { if (!this.#stopped && this.#source === undefined) this.#open() }, this.#random.int(...AWAY_MS))
  }
}
