// `npm run bench:broadcast`: N clients over loopback (in their own process), 200 events published 5 ms
// apart, through a channel and through the hand-written broadcast loop, in the same run; N is each of
// BENCH_CLIENTS (a comma list, default 5000,1000). Latency is measured from when each event was due on
// the producer's schedule (what a late producer or a blocked loop costs) and from its publish() call.
import { fork, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import type { MemoryPeaks } from './broadcast-server.js'

const CLIENT_COUNTS = (process.env.BENCH_CLIENTS ?? '5000,1000').split(',').map(Number)
const EVENTS = Number(process.env.BENCH_BROADCAST_EVENTS ?? 200)
const INTERVAL_MS = 5
/** After the burst starts, how long the client waits for every event before it reports what came. */
const DELIVERY_LIMIT_MS = 30_000
const TIME_LIMIT_MS = 120_000

interface Latency { p50: number, p99: number, max: number }
export interface Result {
  clients: number
  cpuMs: number
  clientCpuMs: number
  fromSchedule: Latency
  fromPublish: Latency
  firstToLast: number
  /** The server's resident memory when the burst started, and its peak during the burst (bytes). */
  rssAtStart: number
  heapAtStart: number
  peakRss: number
  peakSource: 'VmHWM' | 'sampled'
  peaks: MemoryPeaks
  perSubscriber: number
  errors: number
}

/** Issue 10's targets, by client count; a count not listed is checked for delivery only. */
interface Targets { cpuRatio?: number, p99FromSchedule: number, firstToLast?: number, peakRssRatio?: number, idleBytes?: number }
const TARGETS: Record<number, Targets> = {
  5000: { cpuRatio: 0.2, p99FromSchedule: 300, firstToLast: 1300, peakRssRatio: 1.5, idleBytes: 5.5 * 1024 },
  1000: { p99FromSchedule: 100 }
}

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

export async function runVariant (variant: 'plugin' | 'baseline', clients: number): Promise<Result> {
  const server = child('./broadcast-server.ts', [variant], true)
  let client: ChildProcess | undefined
  // Bounded: whatever happens, both processes are gone after the time limit.
  const limit = setTimeout(() => { server.kill(); client?.kill() }, TIME_LIMIT_MS)
  try {
    const { port } = await next<{ port: number }>(server, 'ready')
    client = child('./broadcast-client.ts',
      [`http://127.0.0.1:${port}/events`, String(clients), String(EVENTS), String(DELIVERY_LIMIT_MS)])
    const connected = await next<{ errors: number }>(client, 'connected')
    if (connected.errors > 0) throw new Error(`${connected.errors} clients failed to connect`)
    await new Promise(resolve => setTimeout(resolve, 500))
    server.send({ type: 'memory' })
    const memory = await next<{ perSubscriber: number, subscribers: number }>(server, 'memory')
    if (memory.subscribers !== clients) throw new Error(`${memory.subscribers} of ${clients} subscribed`)
    const done = next<Pick<Result, 'fromSchedule' | 'fromPublish' | 'firstToLast' | 'clientCpuMs' | 'errors'>>(client, 'done')
    client.send({ type: 'start' })
    server.send({ type: 'burst', events: EVENTS, intervalMs: INTERVAL_MS })
    const delivery = await done
    server.send({ type: 'measure' })
    const measured = await next<Pick<Result, 'cpuMs' | 'rssAtStart' | 'heapAtStart' | 'peakRss' | 'peakSource' | 'peaks'>>(server, 'measure')
    server.send({ type: 'exit' })
    return {
      clients,
      ...delivery,
      cpuMs: measured.cpuMs,
      rssAtStart: measured.rssAtStart,
      heapAtStart: measured.heapAtStart,
      peakRss: measured.peakRss,
      peakSource: measured.peakSource,
      peaks: measured.peaks,
      perSubscriber: memory.perSubscriber
    }
  } finally {
    clearTimeout(limit)
    client?.kill()
    await once(server, 'exit')
  }
}

const MB = 1024 * 1024
const ms = (n: number, width = 6): string => n.toFixed(0).padStart(width)

function row (name: string, r: Result): string {
  return `  ${name.padEnd(8)} server cpu ${ms(r.cpuMs)} ms  client cpu ${ms(r.clientCpuMs)} ms  ` +
    `from schedule p50/p99/max ${ms(r.fromSchedule.p50, 5)}/${ms(r.fromSchedule.p99, 5)}/${ms(r.fromSchedule.max, 5)} ms  ` +
    `from publish p50/p99 ${ms(r.fromPublish.p50, 5)}/${ms(r.fromPublish.p99, 5)} ms  ` +
    `first->last ${ms(r.firstToLast, 5)} ms\n` +
    `  ${''.padEnd(8)} peak rss ${(r.peakRss / MB).toFixed(1)} MB (${r.peakSource}; ${(r.rssAtStart / MB).toFixed(1)} MB at start, ` +
    `+${((r.peakRss - r.rssAtStart) / MB).toFixed(1)} MB)  sampled peaks: heapUsed ${(r.peaks.heapUsed / MB).toFixed(1)} MB ` +
    `(${(r.heapAtStart / MB).toFixed(1)} at start), ` +
    `external ${(r.peaks.external / MB).toFixed(1)} MB, arrayBuffers ${(r.peaks.arrayBuffers / MB).toFixed(1)} MB  ` +
    `idle heap ${(r.perSubscriber / 1024).toFixed(2)} KB/subscriber  errors ${r.errors}`
}

/** The checks for one client count: the plugin against the loop measured in the same run. */
function checks (baseline: Result, plugin: Result): Array<[string, boolean]> {
  const target = TARGETS[plugin.clients]
  const list: Array<[string, boolean]> = [['every client got every event in order, once', plugin.errors === 0]]
  if (target === undefined) return list
  const { cpuRatio, p99FromSchedule, firstToLast, peakRssRatio, idleBytes } = target
  if (cpuRatio !== undefined) {
    const ratio = plugin.cpuMs / baseline.cpuMs
    list.push([`server CPU ${ratio.toFixed(2)}x of the loop (target <= ${cpuRatio}x)`, ratio <= cpuRatio])
  }
  list.push([`p99 from the schedule ${plugin.fromSchedule.p99.toFixed(0)} ms (loop ${baseline.fromSchedule.p99.toFixed(0)} ms; ` +
    `target <= ${p99FromSchedule} ms)`, plugin.fromSchedule.p99 <= p99FromSchedule])
  if (firstToLast !== undefined) {
    list.push([`last delivery ${plugin.firstToLast.toFixed(0)} ms after the first publish (target <= ${firstToLast} ms)`,
      plugin.firstToLast <= firstToLast])
  }
  if (peakRssRatio !== undefined) {
    const ratio = plugin.peakRss / baseline.peakRss
    list.push([`server peak RSS ${ratio.toFixed(2)}x of the loop's (target <= ${peakRssRatio}x)`, ratio <= peakRssRatio])
  }
  if (idleBytes !== undefined) {
    list.push([`idle heap ${(plugin.perSubscriber / 1024).toFixed(2)} KB per subscriber (target <= ${idleBytes / 1024} KB)`,
      plugin.perSubscriber <= idleBytes])
  }
  return list
}

export async function benchBroadcast (): Promise<boolean> {
  let ok = true
  for (const clients of CLIENT_COUNTS) {
    const baseline = await runVariant('baseline', clients)
    const plugin = await runVariant('plugin', clients)
    console.log(`broadcast: ${clients} clients over loopback, ${EVENTS} events ${INTERVAL_MS} ms apart`)
    console.log(row('loop', baseline))
    console.log(row('plugin', plugin))
    for (const [what, passed] of checks(baseline, plugin)) {
      console.log(`  ${passed ? 'PASS' : 'FAIL'} ${what}`)
      ok &&= passed
    }
  }
  return ok
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.exitCode = (await benchBroadcast()) ? 0 : 1
}
