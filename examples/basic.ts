// 1. basic: five events, one per second, then the stream ends.
//
//   curl -N http://localhost:3000/basic/events
//
// The smallest route: mark it `{ sse: true }` and write an `async function*` handler. Every yielded
// string becomes one `data:` event; when the generator returns, the response ends.
import Fastify, { type FastifyInstance, type FastifyPluginAsync, type FastifyServerOptions } from 'fastify'
import { setTimeout as sleep } from 'node:timers/promises'
import ssePlugin from '../lib/index.js'

export interface BasicOptions {
  /** Events sent before the stream ends. @default 5 */
  count?: number
  /** Pause between events, in ms. @default 1000 */
  intervalMs?: number
}

export const basic: FastifyPluginAsync<BasicOptions> = async function basic (app, opts) {
  const count = opts.count ?? 5
  const intervalMs = opts.intervalMs ?? 1000

  app.get('/events', { sse: true }, async function * (_request, reply) {
    // The stream's own signal: it aborts when the client leaves or the server closes.
    const { signal } = reply.sseContext
    for (let i = 0; i < count; i++) {
      if (i > 0) await sleep(intervalMs, undefined, { signal })
      yield `Event ${i}`
    }
  })
}

export async function build (opts: BasicOptions & { logger?: FastifyServerOptions['logger'] } = {}): Promise<FastifyInstance> {
  const app = Fastify({ logger: opts.logger ?? false })
  await app.register(ssePlugin)
  await app.register(basic, opts)
  return app
}
