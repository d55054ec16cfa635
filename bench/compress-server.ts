// The server process for the memory part of `npm run bench:compress`. Every stream sends JSON events
// up to the current target, then waits for the next. GET /memory?streams=N&events=E raises the target
// to E, waits until N streams have reached it, and reports the resident set after a full GC.
// Prints its URL as one line once listening.
import { setTimeout as sleep } from 'node:timers/promises'
import Fastify from 'fastify'
import ssePlugin from '../lib/index.js'
import { jsonEvent } from './json-events.js'

const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) throw new Error('run with --expose-gc')

let target = 0
/** Streams that sent every event up to the target. */
let reached = 0
/** Resolves when the target is raised. */
let raise!: () => void
let raised = new Promise<void>(resolve => { raise = resolve })

const app = Fastify({ logger: false })
await app.register(ssePlugin, { compress: process.env.BENCH_COMPRESS === 'true', heartbeat: false })
app.get('/events', { sse: true }, async function * ({ signal }) {
  const left = new Promise<void>(resolve => signal.addEventListener('abort', () => resolve()))
  let sent = 0
  while (!signal.aborted) {
    while (sent < target) yield jsonEvent(sent++)
    reached++
    await Promise.race([raised, left])
  }
})
app.get<{ Querystring: { streams: string, events: string } }>('/memory', async request => {
  target = Number(request.query.events)
  reached = 0
  const raiseNow = raise
  raised = new Promise<void>(resolve => { raise = resolve })
  raiseNow()
  while (reached < Number(request.query.streams)) await sleep(20)
  // The last frames are on their way out through the encoders.
  await sleep(300)
  gc!()
  gc!()
  return { rss: process.memoryUsage().rss }
})
process.stdout.write(await app.listen({ port: 0, host: '127.0.0.1' }) + '\n')
