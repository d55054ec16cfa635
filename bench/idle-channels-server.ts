// The server process for the idle-channels benchmark (and for the test of issue 8, item 7): the
// README's one-line route on a channel per user, `/notify/:user`. Clients, in a process of their own,
// each open one user's stream and leave. Once every channel has been idle past channelIdleTimeout,
// the heap is compared with a baseline taken the same way after a warm-up round. Prints one JSON line.
import { execFile } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import { getHeapSpaceStatistics } from 'node:v8'
import Fastify from 'fastify'
import ssePlugin from '../lib/index.js'

const CHANNELS = Number(process.env.BENCH_CHANNELS ?? 20_000)
const WARM_UP = 5000
const IDLE_MS = 300

const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) throw new Error('run with --expose-gc')
const run = promisify(execFile)

const app = Fastify({ logger: false })
await app.register(ssePlugin, { channelIdleTimeout: IDLE_MS, heartbeat: false })
app.get<{ Params: { user: string } }>('/notify/:user', (request, reply) =>
  reply.sse(app.sse.channel(`user:${request.params.user}`).subscribe({ lastEventId: request.lastEventId })))
const url = `${await app.listen({ port: 0, host: '127.0.0.1' })}/notify/`

/** Users `from` to `to - 1` come and go; then wait until their channels are idle for longer than the timeout. */
async function visit (from: number, to: number): Promise<void> {
  await run(process.execPath, ['--import', 'tsx', new URL('./idle-channels-client.ts', import.meta.url).pathname,
    url, String(from), String(to)])
  while (app.sse.streams > 0) await sleep(10)
  await sleep(2 * IDLE_MS)
}

/** Heap used by objects. Compiled code is left out: it grows as V8 optimizes, whatever the number of channels. */
function heap (): number {
  gc!()
  gc!()
  return getHeapSpaceStatistics().filter(space => !space.space_name.startsWith('code_'))
    .reduce((sum, space) => sum + space.space_used_size, 0)
}

// The warm-up makes what is made once (compiled code, parser and socket pools, tables at the size a
// burst of requests grows them to).
await visit(0, WARM_UP)
const baseline = heap()
const started = performance.now()
await visit(WARM_UP, WARM_UP + CHANNELS)
const ms = performance.now() - started
const bytesPerChannel = (heap() - baseline) / CHANNELS
await app.close()
process.stdout.write(JSON.stringify({ channels: CHANNELS, idleMs: IDLE_MS, bytesPerChannel, ms }) + '\n')
