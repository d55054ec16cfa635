// `npm run bench:compare`: every SSE option for Fastify side by side, in one run. Each system runs in
// a server process of its own, its clients in another, over loopback; rounds interleave the systems
// (the order rotates each round) so noise spreads over all of them. Writes results/latest.json and
// the report (BENCHMARKS.md and its charts), prints the tables and PASS/FAIL lines, and exits
// non-zero when a target fails. BENCH_COMPARE_QUICK=1: small counts, a smoke run (results/quick.*).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import { catalog, type SystemInfo, type Workload } from './catalog.js'
import { Child } from './child.js'
import type { ClientCommand, ClientMessage, ServerCommand, ServerMessage } from './protocol.js'
import { writeReport } from './report.js'
import type { BroadcastRun, DropRun, Results, Run, StreamRun } from './results.js'
import { STALL_VALUES } from './system.js'

const QUICK = process.env.BENCH_COMPARE_QUICK === '1'
const ROUNDS = Number(process.env.BENCH_COMPARE_ROUNDS ?? (QUICK ? 1 : 3))
const STREAM_EVENTS = QUICK ? 20_000 : 200_000
const BROADCAST_SIZES = QUICK ? [100, 200] : [1000, 5000]
const BROADCAST_EVENTS = 200
const INTERVAL_MS = 5
const DROP_CLIENTS = QUICK ? 200 : 2000
const STALL_MS = QUICK ? 1000 : 3000
/** How long a source may take to be finalized and still count (workload 4 waits this long after the last drop). */
const FINALIZE_WAIT_MS = QUICK ? 1500 : 5000
/** Whatever happens, a run's processes are killed after this long. */
const RUN_LIMIT_MS = 180_000

type Server = Child<ServerCommand, ServerMessage>
type Client = Child<ClientCommand, ClientMessage>

/** The kernel's largest TCP send plus receive buffers: what a stalled loopback connection can hold. */
function socketBufferBytes (): number {
  const max = (file: string): number => Number(readFileSync(file, 'utf8').trim().split(/\s+/)[2])
  return max('/proc/sys/net/ipv4/tcp_wmem') + max('/proc/sys/net/ipv4/tcp_rmem')
}

/** Starts one system's server and a client process, runs `body`, and always kills both. */
async function withProcesses<T> (system: SystemInfo, round: number, body: (server: Server, client: Client, base: string, ready: Extract<ServerMessage, { type: 'ready' }>) => Promise<T>): Promise<Run<T>> {
  const server: Server = new Child('./server.ts', [system.key], { gc: true })
  const client: Client = new Child('./client.ts', [])
  const limit = setTimeout(() => { server.kill().catch(() => {}); client.kill().catch(() => {}) }, RUN_LIMIT_MS)
  try {
    const ready = await server.next('ready', 30_000)
    const result = await body(server, client, `http://127.0.0.1:${ready.port}`, ready)
    return { system: system.key, round, result, serverErrors: server.errors }
  } catch (err) {
    return { system: system.key, round, error: (err as Error).message, serverErrors: server.errors }
  } finally {
    clearTimeout(limit)
    await Promise.all([server.kill(), client.kill()])
  }
}

function streamRun (system: SystemInfo, round: number): Promise<Run<StreamRun>> {
  return withProcesses(system, round, async (server, client, base) => {
    server.send({ type: 'arm' })
    await server.next('armed', 10_000)
    client.send({ type: 'stream', url: `${base}/stream?n=${STREAM_EVENTS}`, events: STREAM_EVENTS })
    const { result } = await client.next('streamed', 120_000)
    server.send({ type: 'measure' })
    const measured = await server.next('measured', 60_000)
    if (result.events !== STREAM_EVENTS) throw new Error(`the client received ${result.events} of ${STREAM_EVENTS} events`)
    return {
      eventsPerSecond: result.events / (result.ms / 1000),
      bytesPerEvent: result.bytes / result.events,
      ms: result.ms,
      serverCpuMs: measured.cpuMs,
      clientCpuMs: result.cpuMs,
      peakRss: measured.peakRss
    }
  })
}

function broadcastRun (system: SystemInfo, round: number, clients: number): Promise<Run<BroadcastRun>> {
  return withProcesses(system, round, async (server, client, base, ready) => {
    client.send({ type: 'connect', url: `${base}/broadcast`, clients, events: BROADCAST_EVENTS })
    const connected = await client.next('connected', 120_000)
    if (connected.connected !== clients) throw new Error(`${connected.connected} of ${clients} clients connected (${connected.errors} errors)`)
    await sleep(500)
    server.send({ type: 'memory' })
    const idle = await server.next('memory', 30_000)
    if (idle.subscribers !== clients) throw new Error(`${idle.subscribers} of ${clients} subscribed`)
    server.send({ type: 'arm' })
    await server.next('armed', 10_000)
    client.send({ type: 'start-burst' })
    server.send({ type: 'burst', events: BROADCAST_EVENTS, intervalMs: INTERVAL_MS })
    const published = await server.next('published', 60_000)
    // Whatever was not delivered 30 s after the last publish counts as a gap.
    let delivered: Extract<ClientMessage, { type: 'delivered' }>
    try {
      delivered = await client.next('delivered', 30_000)
    } catch {
      client.send({ type: 'finish' })
      delivered = await client.next('delivered', 30_000)
    }
    // A system may still be busy after its last delivery (cleaning up a burst): its answer waits for that.
    server.send({ type: 'measure' })
    const measured = await server.next('measured', 90_000)
    return {
      delivery: delivered.result,
      serverCpuMs: measured.cpuMs,
      peakRss: measured.peakRss,
      publishLateMs: published.lateMs,
      connectClientCpuMs: connected.cpuMs,
      idleHeapPerConnection: (idle.heap - ready.heap) / clients,
      idleRssPerConnection: (idle.rss - ready.rss) / clients
    }
  })
}

function dropRun (system: SystemInfo, round: number): Promise<Run<DropRun>> {
  return withProcesses(system, round, async (server, client, base) => {
    // 2,000 clients each read one event and leave; how soon was each one's source finalized?
    client.send({ type: 'drop', url: `${base}/drop-source`, clients: DROP_CLIENTS })
    const dropped = await client.next('dropped', 120_000)
    const lastDrop = Math.max(...dropped.droppedAt.map(([, at]) => at))
    await sleep(Math.max(0, lastDrop + FINALIZE_WAIT_MS + 250 - (performance.timeOrigin + performance.now())))
    server.send({ type: 'drop-counters' })
    const counters = await server.next('drop-counters', 60_000)
    const finalizedAt = new Map(counters.finalizedAt)
    const delays = dropped.droppedAt.map(([id, at]) => (finalizedAt.get(id) ?? Infinity) - at)

    // One client stops reading while the source could yield a million values.
    server.send({ type: 'arm' })
    await server.next('armed', 10_000)
    server.send({ type: 'measure' })
    const before = await server.next('measured', 10_000)
    client.send({ type: 'stall', url: `${base}/stall` })
    const stalled = await client.next('stalled', 30_000)
    await sleep(STALL_MS)
    // A system that pulls without waiting for the socket keeps its event loop busy until the source
    // runs out: its answers may take that long.
    server.send({ type: 'stall-counters' })
    const during = await server.next('stall-counters', 90_000)
    server.send({ type: 'measure' })
    const peak = await server.next('measured', 90_000)
    client.send({ type: 'leave' })
    const left = await client.next('left', 10_000)
    let after = during
    for (const deadline = performance.now() + FINALIZE_WAIT_MS * 2; after.finalizedAt === null && performance.now() < deadline;) {
      await sleep(50)
      server.send({ type: 'stall-counters' })
      after = await server.next('stall-counters', 10_000)
    }
    return {
      clients: DROP_CLIENTS,
      dropped: dropped.droppedAt.length,
      opened: counters.opened,
      finalized: delays.filter(Number.isFinite).length,
      within1s: delays.filter(ms => ms <= 1000).length,
      withinWait: delays.filter(ms => ms <= FINALIZE_WAIT_MS).length,
      slowestMs: Math.max(0, ...delays.filter(Number.isFinite)),
      clientCpuMs: dropped.cpuMs,
      stall: {
        eventsRead: stalled.eventsRead,
        pulled: during.pulled,
        exhausted: during.exhausted,
        rssGrowth: peak.peakRss - before.rss,
        peakRss: peak.peakRss,
        finalizedAfterMs: after.finalizedAt === null ? null : after.finalizedAt - left.at
      }
    }
  })
}

/** The systems in a different order each round, so no system always runs first or last. */
function rotate<T> (items: readonly T[], by: number): T[] {
  const k = by % items.length
  return [...items.slice(k), ...items.slice(0, k)]
}

function progress (what: string, run: Run<unknown>, started: number): void {
  const seconds = ((performance.now() - started) / 1000).toFixed(0).padStart(4)
  console.error(`[${seconds} s] ${what} ${run.system} round ${run.round + 1}: ${run.error === undefined ? 'ok' : `ERROR ${run.error}`}`)
}

const started = performance.now()
// BENCH_COMPARE_SYSTEMS=a,b and BENCH_COMPARE_WORKLOADS=stream,broadcast,drop narrow a run (for a look at one system).
const only = (name: string): string[] | undefined => process.env[name]?.split(',').map(s => s.trim()).filter(Boolean)
const onlySystems = only('BENCH_COMPARE_SYSTEMS')
const onlyWorkloads = only('BENCH_COMPARE_WORKLOADS')
const systems = catalog().filter(s => onlySystems === undefined || onlySystems.includes(s.key))
const wanted = (workload: Workload): boolean => onlyWorkloads === undefined || onlyWorkloads.includes(workload)
const stream: Array<Run<StreamRun>> = []
const broadcast: Record<string, Array<Run<BroadcastRun>>> = Object.fromEntries(BROADCAST_SIZES.map(size => [String(size), []]))
const drop: Array<Run<DropRun>> = []

for (let round = 0; round < ROUNDS; round++) {
  const order = rotate(systems, round)
  for (const system of order.filter(s => wanted('stream') && s.workloads.includes('stream'))) {
    const run = await streamRun(system, round)
    stream.push(run)
    progress('stream', run, started)
  }
  for (const size of BROADCAST_SIZES) {
    for (const system of order.filter(s => wanted('broadcast') && s.workloads.includes('broadcast'))) {
      const run = await broadcastRun(system, round, size)
      broadcast[String(size)]!.push(run)
      progress(`broadcast ${size}`, run, started)
    }
  }
}
// Workload 4 counts behaviour (finalized or not, pulled or not) more than speed: one round.
for (const system of systems.filter(s => wanted('drop') && s.workloads.includes('drop'))) {
  const run = await dropRun(system, 0)
  drop.push(run)
  progress('drop and stall', run, started)
}

const cpus = os.cpus()
const results: Results = {
  meta: {
    date: new Date().toISOString(),
    quick: QUICK,
    machine: {
      cpu: cpus[0]?.model.trim() ?? 'unknown',
      cores: cpus.length,
      node: process.version,
      os: `${os.type()} ${os.release()} (${os.arch()})`,
      memory: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`
    },
    config: {
      rounds: ROUNDS,
      streamEvents: STREAM_EVENTS,
      broadcastSizes: BROADCAST_SIZES,
      broadcastEvents: BROADCAST_EVENTS,
      intervalMs: INTERVAL_MS,
      dropClients: DROP_CLIENTS,
      stallMs: STALL_MS,
      stallValues: STALL_VALUES,
      finalizeWaitMs: FINALIZE_WAIT_MS,
      socketBufferBytes: socketBufferBytes()
    },
    durationMs: performance.now() - started
  },
  systems: systems.map(({ key, label, plugin }) => ({ key, label, plugin })),
  stream,
  broadcast,
  drop
}
const resultsDir = new URL('./results/', import.meta.url)
mkdirSync(resultsDir, { recursive: true })
// A narrowed run is a look at some systems, never the report of record.
const mode = QUICK ? 'quick' : onlySystems !== undefined || onlyWorkloads !== undefined ? 'partial' : 'full'
const resultsFile = new URL(mode === 'full' ? 'latest.json' : `${mode}.json`, resultsDir)
writeFileSync(resultsFile, JSON.stringify(results, null, 2) + '\n')
const { text, pass } = writeReport(results, mode)
console.log(text)
console.log(`results: ${resultsFile.pathname}`)
process.exitCode = pass ? 0 : 1
