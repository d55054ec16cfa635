// 3. formats: a comment, a retry interval, then events with ids and an event type.
//
//   curl -N http://localhost:3000/formats/events
//
// Yield a message object to set the fields of a frame: `comment`, `retry`, `id`, `event`, `data`.
// Its `data` goes through the serializer (JSON by default) unless it is already a string.
//
//   : This is a comment          clients ignore comment lines (proxies still see traffic)
//   retry: 10000                 an EventSource waits 10 s before it reconnects
//
//   id: 0                        sent back as Last-Event-ID when the client reconnects
//   event: update                dispatched to addEventListener('update'), not onmessage
//   data: {"time":1725794933.29}
import { setTimeout as sleep } from 'node:timers/promises'
import Fastify, { type FastifyInstance, type FastifyPluginAsync, type FastifyServerOptions } from 'fastify'
import ssePlugin from '../lib/index.js'

export interface FormatsOptions {
  /** `update` events sent before the stream ends. @default 3 */
  count?: number
  /** Pause between events, in ms. @default 1000 */
  intervalMs?: number
  /** The reconnection delay announced to the client, in ms. @default 10000 */
  retryMs?: number
}

export const formats: FastifyPluginAsync<FormatsOptions> = async function formats (app, opts) {
  const count = opts.count ?? 3
  const intervalMs = opts.intervalMs ?? 1000
  const retryMs = opts.retryMs ?? 10_000

  app.get('/events', (request, reply) => reply.sse(async function * ({ signal }) {
    // One frame with both lines, as in the tutorial: a comment and the retry interval.
    yield { comment: 'This is a comment', retry: retryMs }
    for (let i = 0; i < count; i++) {
      if (i > 0) await sleep(intervalMs, undefined, { signal })
      yield { id: i, event: 'update', data: { time: Date.now() / 1000 } }
    }
  }))
}

export async function build (opts: FormatsOptions & { logger?: FastifyServerOptions['logger'] } = {}): Promise<FastifyInstance> {
  const app = Fastify({ logger: opts.logger ?? false })
  await app.register(ssePlugin)
  await app.register(formats, opts)
  return app
}
