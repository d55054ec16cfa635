import { EventSource, type FetchLike } from 'eventsource'
import type { Random } from '../fixtures/random.js'
import { CURSOR_EVENT, GAP_EVENT, type ClientRecord, type Received } from './checker.js'

// The readers of the fault-injection suite: real `eventsource` clients over loopback behind a load
// balancer of the test's own (a `fetch` that sends every request, first or reconnection, to an app
// chosen at random among those up, with the client's Last-Event-ID). Each client also leaves at random
// times and comes back as a new EventSource carrying the last id it received; when a server drops it,
// the library's own reconnection takes over. Every event it receives is recorded. A client may read a
// multiplexed route instead (app.sse.multiplex): it then listens to each channel's events and gap
// notices (`<channel>.tick`, `<channel>.sse-gap`), and to the cursor that opens the stream, and comes
// back with the cursor it last received.

/** Where a request goes: the base URL of an app that is up, or undefined when none is. */
export interface Balancer {
  pick (random: Random): string | undefined
}

export interface ClientOptions {
  /** The route, e.g. `/ticks`. */
  readonly path: string
  /** How long a client keeps one EventSource before leaving and coming back, in ms. */
  readonly stayMs: readonly [min: number, max: number]
  /** The channels of a multiplexed route; a route of one channel when absent. */
  readonly channels?: readonly string[]
}

/** The event names a client listens to: published events are `tick`s. */
const EVENTS = ['tick', GAP_EVENT, 'message']

/**
 * On a multiplexed route: the cursor that opens a stream (where it starts in each channel), and each
 * channel's ticks, gap notices and unnamed events (none are published).
 */
function multiplexedEvents (channels: readonly string[]): string[] {
  return ['message', CURSOR_EVENT, ...channels.flatMap(channel => [channel + '.tick', channel + '.' + GAP_EVENT, channel])]
}

/** The channel a multiplexed event belongs to (its name up to the first dot); '' on a route of one channel. */
function channelOfEvent (type: string, multiplexed: boolean): string {
  if (!multiplexed) return ''
  const dot = type.indexOf('.')
  return dot === -1 ? type : type.slice(0, dot)
}
/** How long a client waits before it comes back after leaving, or after its EventSource gave up, in ms. */
const AWAY_MS: readonly [number, number] = [0, 150]

export class Client implements ClientRecord {
  readonly name: string
  readonly received: Received[] = []
  /** Requests sent (first connections, reconnections, comebacks). */
  requests = 0
  /** Times the library reconnected by itself (the server ended the stream, or the connection failed). */
  dropped = 0
  /** Times the client left and came back as a new EventSource. */
  comebacks = 0
  /** Why an EventSource gave up (a status other than 200...), by message. */
  readonly failures = new Map<string, number>()
  /** The sequence number of the last tick received, by channel ('' on a route of one channel). */
  readonly #lastSeqs = new Map<string, number>()
  readonly #balancer: Balancer
  readonly #random: Random
  readonly #options: ClientOptions
  #lastId: string | undefined
  #source: EventSource | undefined
  #timer: NodeJS.Timeout | undefined
  #stopped = false

  constructor (name: string, balancer: Balancer, random: Random, options: ClientOptions) {
    this.name = name
    this.#balancer = balancer
    this.#random = random
    this.#options = options
  }

  /** The sequence number of the last event received; -1 before the first. */
  get lastSeq (): number {
    return this.lastSeqOf('')
  }

  /** On a multiplexed route, the sequence number of the last tick of `channel` received; -1 before the first. */
  lastSeqOf (channel: string): number {
    return this.#lastSeqs.get(channel) ?? -1
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
    // A failed fetch: the library reconnects after its retry delay.
    if (base === undefined) throw new TypeError('no app is up')
    this.requests++
    const headers = { ...init.headers }
    if (this.#lastId !== undefined) headers['Last-Event-ID'] = this.#lastId
    return fetch(base + this.#options.path, { ...init, headers })
  }

  #open (): void {
    const source = new EventSource('http://balancer.invalid' + this.#options.path, { fetch: this.#fetch })
    this.#source = source
    const { channels } = this.#options
    const multiplexed = channels !== undefined
    const record = (event: MessageEvent<string>): void => {
      // A source closed already may still hand over what it had parsed: it is not this client's any more.
      if (source !== this.#source) return
      this.received.push({ id: event.lastEventId, event: event.type, data: event.data, at: Date.now() })
      this.#lastId = event.lastEventId
      if (event.type === 'tick' || event.type.endsWith('.tick')) {
        this.#lastSeqs.set(channelOfEvent(event.type, multiplexed), (JSON.parse(event.data) as { seq: number }).seq)
      }
    }
    for (const name of multiplexed ? multiplexedEvents(channels) : EVENTS) source.addEventListener(name, record)
    source.addEventListener('error', event => {
      if (source !== this.#source) return
      if (source.readyState !== source.CLOSED) {
        this.dropped++
        return
      }
      // It gave up (a 503 from an app closing, say): a real client would come back, so this one does.
      this.failures.set(event.message ?? 'error', (this.failures.get(event.message ?? 'error') ?? 0) + 1)
      this.#comeBack()
    })
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
