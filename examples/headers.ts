// 2. headers: what makes a response an event stream, and what a browser does with each header.
//
//   curl -N -i http://localhost:3000/headers/events   # the headers, then the events
//   curl -N -i http://localhost:3000/headers/plain    # the same bytes as text/plain
//
// `reply.sse()` writes these for you (a header you set on the reply first is kept, except
// content-type, which is always the event stream's):
//
//   content-type: text/event-stream; charset=utf-8
//     The one that matters. `new EventSource(url)` accepts only this type: any other type, or any
//     status but 200, fails the connection for good (readyState CLOSED, no retry). Opened as a page,
//     a browser renders the stream as it arrives instead of offering it as a download, which is what
//     happens to /plain below (the tutorial's first step, before it set the type).
//   cache-control: no-cache
//     A browser or proxy cache must not answer a later request with this response: every
//     connection must reach the server and get live events.
//   connection: keep-alive (HTTP/1.1 only; HTTP/2 forbids it)
//     The connection stays open after the headers: the body is the stream, and it has no length
//     (the body is sent chunked).
//   x-accel-buffering: no
//     Tells nginx, and proxies that copy it, to pass each event on at once instead of buffering.
import { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import Fastify, { type FastifyInstance, type FastifyPluginAsync, type FastifyServerOptions } from 'fastify'
import ssePlugin from '../lib/index.js'

export interface HeadersOptions {
  /** Events sent before the stream ends. @default 5 */
  count?: number
  /** Pause between events, in ms. @default 1000 */
  intervalMs?: number
}

async function * counter (count: number, intervalMs: number, signal: AbortSignal): AsyncGenerator<string> {
  for (let i = 0; i < count; i++) {
    if (i > 0) await sleep(intervalMs, undefined, { signal })
    yield `Event ${i}`
  }
}

/** Frames written by hand, only to send /plain the very bytes the plugin writes for /events. */
async function * handWrittenFrames (texts: AsyncIterable<string>): AsyncGenerator<string> {
  for await (const text of texts) yield `data: ${text}\n\n`
}

export const headers: FastifyPluginAsync<HeadersOptions> = async function headers (app, opts) {
  const count = opts.count ?? 5
  const intervalMs = opts.intervalMs ?? 1000

  app.get('/events', (request, reply) => {
    // A header set before reply.sse() goes out with the stream's own.
    reply.header('x-example', 'headers')
    return reply.sse(({ signal }) => counter(count, intervalMs, signal))
  })

  // The same bytes without the event-stream headers: EventSource refuses it, a browser downloads it.
  app.get('/plain', (request, reply) => {
    reply.type('text/plain; charset=utf-8')
    return reply.send(Readable.from(handWrittenFrames(counter(count, intervalMs, request.signal))))
  })
}

export async function build (opts: HeadersOptions & { logger?: FastifyServerOptions['logger'] } = {}): Promise<FastifyInstance> {
  const app = Fastify({ logger: opts.logger ?? false })
  await app.register(ssePlugin)
  await app.register(headers, opts)
  return app
}
