// 5. resume: a stream that continues after the Last-Event-ID the client sends.
//
//   curl -N http://localhost:3000/resume/events                        # Event 1 ... Event 5
//   curl -N -H 'Last-Event-ID: 41' http://localhost:3000/resume/events # Event 42 ... Event 46
//   npx tsx examples/resume-client.ts                                  # run it twice: no gap, no repeat
//
// Every event carries an id. A client remembers the last id it received and sends it back as the
// Last-Event-ID header when it reconnects: a browser's EventSource does so by itself (within one
// page's life), and examples/resume-client.ts does so across runs by keeping the id in a file.
// Here ids are sequence numbers, so "after id N" is simply N + 1; a real feed would look N up in
// its log (channels do that for you: see the broadcast example).
import { setTimeout as sleep } from 'node:timers/promises'
import createError from '@fastify/error'
import Fastify, { type FastifyInstance, type FastifyPluginAsync, type FastifyServerOptions } from 'fastify'
import ssePlugin from '../lib/index.js'

export interface ResumeOptions {
  /** Events per connection; then the stream ends and the client reconnects. @default 5 */
  batch?: number
  /** Pause between events, in ms. @default 1000 */
  intervalMs?: number
  /** How long a client waits before reconnecting, in ms. @default 1000 */
  retryMs?: number
}

export const BadLastEventIdError = createError('FST_EXAMPLE_BAD_LAST_EVENT_ID',
  'Last-Event-ID must be an id this stream sent (a non-negative integer); got %s', 400)

/** The first id to send: the one after the client's last, or 1 for a new client. */
function firstIdAfter (lastEventId: string | undefined): number {
  if (lastEventId === undefined || lastEventId === '') return 1
  if (!/^\d{1,15}$/.test(lastEventId)) throw new BadLastEventIdError(JSON.stringify(lastEventId))
  return Number(lastEventId) + 1
}

export const resume: FastifyPluginAsync<ResumeOptions> = async function resume (app, opts) {
  const batch = opts.batch ?? 5
  const intervalMs = opts.intervalMs ?? 1000
  const retry = opts.retryMs ?? 1000

  app.get('/events', (request, reply) => reply.sse(({ lastEventId, signal }) => {
    // Thrown before the stream starts, so the client gets a 400 (and an EventSource gives up).
    const first = firstIdAfter(lastEventId)
    return (async function * () {
      for (let id = first; id < first + batch; id++) {
        if (id > first) await sleep(intervalMs, undefined, { signal })
        yield { id, data: `Event ${id}` }
      }
    })()
  }, { retry }))
}

export async function build (opts: ResumeOptions & { logger?: FastifyServerOptions['logger'] } = {}): Promise<FastifyInstance> {
  const app = Fastify({ logger: opts.logger ?? false })
  await app.register(ssePlugin)
  await app.register(resume, opts)
  return app
}
