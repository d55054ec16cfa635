import { randomUUID } from 'node:crypto'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { createParser, type EventSourceMessage } from 'eventsource-parser'
import { kStreams, type StreamRegistry } from './streams.js'
import { withTimeout } from './timeout.js'

// A test helper for apps that use this plugin: open a stream over real loopback HTTP, collect parsed
// events, disconnect, and wait until the server has finalized the stream's source.

/** One event as a client sees it. `event` is undefined for the default `message` type. */
export type TestEvent = EventSourceMessage

export interface OpenStreamOptions {
  /** The request's method (a stream that answers a POST). @default 'GET' */
  method?: string
  /** A request body, sent as JSON. */
  body?: unknown
  headers?: Record<string, string>
  /** Sent as the `Last-Event-ID` header. */
  lastEventId?: string
}

export interface TestStream {
  readonly status: number
  readonly headers: Headers
  /** Every event received so far, in order. */
  readonly events: TestEvent[]
  /** Comment lines received so far (heartbeats are empty comments). */
  readonly comments: string[]
  /** The last `retry:` value received. */
  readonly retry: number | undefined
  /** The id of the last event received (what a client would send as `Last-Event-ID`). */
  readonly lastEventId: string | undefined
  /**
   * Wait for the next `count` events not taken yet and return them; rejects after `timeoutMs` (and
   * then takes nothing). Takes called together are served one after another, in call order.
   */
  take (count: number, timeoutMs?: number): Promise<TestEvent[]>
  /** Resolves when the server ends the response. */
  readonly ended: Promise<void>
  /**
   * Disconnect like a client that goes away, and resolve once the server-side stream has ended and
   * its source has been finalized (a generator's `finally` has run).
   */
  close (): Promise<void>
}

const TAG = 'x-sse-test-stream'

function registryOf (app: FastifyInstance): StreamRegistry {
  const registry = (app as unknown as Record<symbol, StreamRegistry | undefined>)[kStreams]
  if (registry === undefined) throw new Error('fastify-sse-stream is not registered on this app')
  return registry
}

/** One listen per app, however many streams open at once (each listen() call adds server listeners). */
const listening = new WeakMap<FastifyInstance, Promise<string>>()

async function baseUrl (app: FastifyInstance): Promise<string> {
  if (!app.server.listening) {
    let started = listening.get(app)
    if (started === undefined) listening.set(app, started = app.listen({ port: 0, host: '127.0.0.1' }))
    await started
  }
  const { address, family, port } = app.server.address() as AddressInfo
  return `http://${family === 'IPv6' ? `[${address}]` : address}:${port}`
}

/** Open `path` on `app` (listening on a loopback port if it is not yet) as an event stream. */
export async function openStream (app: FastifyInstance, path: string, options: OpenStreamOptions = {}): Promise<TestStream> {
  const registry = registryOf(app)
  const tag = randomUUID()
  const controller = new AbortController()
  const headers: Record<string, string> = { accept: 'text/event-stream', ...options.headers, [TAG]: tag }
  if (options.lastEventId !== undefined) headers['last-event-id'] = options.lastEventId
  // node:http on a connection of its own (no agent): leaving closes exactly this socket, as a browser tab would.
  const url = await baseUrl(app) + path
  const body = options.body === undefined ? undefined : JSON.stringify(options.body)
  if (body !== undefined) headers['content-type'] = 'application/json'
  const response = await new Promise<http.IncomingMessage>((resolve, reject) => {
    http.request(url, { method: options.method ?? 'GET', headers, agent: false, signal: controller.signal }, resolve)
      .on('error', reject).end(body)
  })
  const server = registry.find(request => request.headers[TAG] === tag)

  const events: TestEvent[] = []
  const comments: string[] = []
  let retry: number | undefined
  let lastEventId: string | undefined
  // take() hands out events in order: `cursor` is the first one not yet taken. It moves only when a
  // take succeeds, and takes run one after another, in the order they were called.
  let cursor = 0
  let takes: Promise<unknown> = Promise.resolve()
  let arrived: { target: number, resolve: () => void } | null = null
  const parser = createParser({
    onEvent (event) {
      events.push(event)
      if (event.id !== undefined) lastEventId = event.id
      if (arrived !== null && events.length >= arrived.target) arrived.resolve()
    },
    onComment (comment) { comments.push(comment) },
    onRetry (ms) { retry = ms }
  })

  const ended = (async () => {
    const decoder = new TextDecoder()
    try {
      for await (const chunk of response) parser.feed(decoder.decode(chunk as Buffer, { stream: true }))
    } catch {
      // Aborted by close(): the stream is over for this client.
    }
  })()

  const responseHeaders = new Headers()
  for (const [name, value] of Object.entries(response.headers)) {
    for (const one of [value].flat()) responseHeaders.append(name, String(one))
  }
  return {
    status: response.statusCode as number,
    headers: responseHeaders,
    events,
    comments,
    get retry () { return retry },
    get lastEventId () { return lastEventId },
    ended,
    take (count, timeoutMs = 5000) {
      if (!Number.isSafeInteger(count) || count < 0) {
        return Promise.reject(new TypeError(`take() needs a non-negative integer count; got ${count}`))
      }
      const taking = takes.then(async () => {
        const target = cursor + count
        if (events.length < target) {
          const had = (): number => events.length - cursor
          const enough = new Promise<void>(resolve => { arrived = { target, resolve } })
          const over = ended.then(() => { throw new Error(`the stream ended after ${had()} of ${count} events`) })
          await withTimeout(Promise.race([enough, over]), timeoutMs, () => {
            throw new Error(`timed out after ${timeoutMs} ms with ${had()} of ${count} events`)
          }).finally(() => { arrived = null })
        }
        const taken = events.slice(cursor, target)
        cursor = target
        return taken
      })
      takes = taking.catch(() => {})
      return taking
    },
    async close () {
      controller.abort()
      await ended
      await server?.done
    }
  }
}
