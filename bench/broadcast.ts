// `npm run bench:broadcast`: 5,000 clients over loopback (in their own process), 200 events published
// 5 ms apart, through a channel and through the hand-written broadcast loop, in the same run.
import { fork, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'

const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 5000)
const EVENTS = Number(process.env.BENCH_BROADCAST_EVENTS ?? 200)
const INTERVAL_MS = 5
const TIME_LIMIT_MS = 120_000

interface Result { cpuMs: number, p50: number, p99: number, max: number, firstToLast: number, perSubscriber: number, errors: number }

function child (file: string, args: string[], gc = false): ChildProcess {
  return fork(new URL(file, import.meta.url).pathname, args, {
    execArgv: ['--import', 'tsx', ...(gc ? ['--expose-gc'] : []),
      // BENCH_PROFILE=1: the server writes a .cpuprofile (to BENCH_PROFILE_DIR) for a look at its hot paths.
      ...(gc && process.env.BENCH_PROFILE === '1' ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE_DIR ?? '.'}`] : [])],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  })
}

async function next<T> (process: ChildProcess, type: string): Promise<T> {
  for (;;) {
    const [message] = await once(process, 'message') as [{ type: string }]
    if (message.type === type) return message as T
  }
}

export async function runVariant (variant: 'plugin' | 'baseline'): Promise<Result> {
  const server = child('./broadcast-server.ts', [variant], true)
  let client: ChildProcess | undefined
  // Bounded: whatever happens, both processes are gone after the time limit.
  const limit = setTimeout(() => { server.kill(); client?.kill() }, TIME_LIMIT_MS)
  try {
    const { port } = await next<{ port: number }>(server, 'ready')
    client = child('./broadcast-client.ts', [`http://127.0.0.1:${port}/events`, String(CLIENTS), String(EVENTS)])
    const connected = await next<{ errors: number }>(client, 'connected')
    if (connected.errors > 0) throw new Error(`${connected.errors} clients failed to connect`)
    await new Promise(resolve => setTimeout(resolve, 500))
    server.send({ type: 'memory' })
    const memory = await next<{ perSubscriber: number, subscribers: number }>(server, 'memory')
    if (memory.subscribers !== CLIENTS) throw new Error(`${memory.subscribers} of ${CLIENTS} subscribed`)
    const done = next<Omit<Result, 'cpuMs' | 'perSubscriber'>>(client, 'done')
    server.send({ type: 'burst', events: EVENTS, intervalMs: INTERVAL_MS })
    const delivery = await done
    server.send({ type: 'cpu' })
    const { ms } = await next<{ ms: number }>(server, 'cpu')
    server.send({ type: 'exit' })
    return { ...delivery, cpuMs: ms, perSubscriber: memory.perSubscriber }
  } finally {
    clearTimeout(limit)
    client?.kill()
    await once(server, 'exit')
  }
}

export async function benchBroadcast (): Promise<boolean> {
  const baseline = await runVariant('baseline')
  const plugin = await runVariant('plugin')
  const row = (name: string, r: Result): string =>
    `  ${name.padEnd(30)} cpu ${r.cpuMs.toFixed(0).padStart(6)} ms   p50 ${r.p50.toFixed(1).padStart(7)} ms   ` +
    `p99 ${r.p99.toFixed(1).padStart(7)} ms   first->last ${r.firstToLast.toFixed(0).padStart(5)} ms   ` +
    `idle heap ${(r.perSubscriber / 1024).toFixed(2)} KB/subscriber   order errors ${r.errors}`
  console.log(`broadcast: ${CLIENTS} clients over loopback, ${EVENTS} events ${INTERVAL_MS} ms apart`)
  console.log(row('hand-written broadcast loop', baseline))
  console.log(row('fastify-sse-stream channel', plugin))
  const checks: Array<[string, boolean]> = [
    [`server CPU ${(plugin.cpuMs / baseline.cpuMs).toFixed(2)}x of the loop (target <= 0.5x)`, plugin.cpuMs <= 0.5 * baseline.cpuMs],
    [`p99 ${plugin.p99.toFixed(1)} ms vs ${baseline.p99.toFixed(1)} ms (target: no worse)`, plugin.p99 <= baseline.p99],
    [`last delivery ${plugin.firstToLast.toFixed(0)} ms after the first publish (target <= 1500 ms)`, plugin.firstToLast <= 1500],
    [`idle heap ${(plugin.perSubscriber / 1024).toFixed(2)} KB per subscriber (target < 6 KB)`, plugin.perSubscriber < 6 * 1024],
    ['every client got every event in order, once', plugin.errors === 0]
  ]
  for (const [what, ok] of checks) console.log(`  ${ok ? 'PASS' : 'FAIL'} ${what}`)
  return checks.every(([, ok]) => ok)
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.exitCode = (await benchBroadcast()) ? 0 : 1
}
