// Pure: the issue's targets, each a PASS or FAIL line computed from one results file. Ratios are to
// the hand-written node:http writer measured in the same run. A missing measurement is NaN, and
// every comparison with NaN is false: it fails.
import { BASELINE, SUBJECT } from './catalog.js'
import type { Results } from './results.js'
import { broadcastSummary, dropSummary, streamSummary } from './summary.js'

export type Workload = 'stream' | 'broadcast' | 'idle' | 'drop'
export interface Target { workload: Workload, pass: boolean, text: string }

const fmt = (n: number, digits = 0): string => Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : 'n/a'

export function targets (results: Results): Target[] {
  const list: Target[] = []
  const peers = results.systems.filter(s => s.key !== BASELINE && s.key !== SUBJECT && !s.key.startsWith(`${SUBJECT}-`))

  // W1
  const base = streamSummary(results, BASELINE)
  const subject = streamSummary(results, SUBJECT)
  const ratio = subject.eventsPerSecond / base.eventsPerSecond
  list.push({ workload: 'stream', pass: ratio >= 1.5, text: `fastify-sse-stream ${fmt(ratio, 2)}x the baseline's events/s (target >= 1.5x)` })
  const best = peers.map(p => ({ label: p.label, eps: streamSummary(results, p.key).eventsPerSecond }))
    .sort((a, b) => (Number.isFinite(b.eps) ? b.eps : -1) - (Number.isFinite(a.eps) ? a.eps : -1))[0]
  list.push({
    workload: 'stream',
    pass: Number.isFinite(subject.eventsPerSecond) && (best === undefined || !Number.isFinite(best.eps) || subject.eventsPerSecond > best.eps),
    text: `fastify-sse-stream first among the plugins (${fmt(subject.eventsPerSecond)} events/s; next: ${best?.label ?? 'none'} ${fmt(best?.eps ?? Number.NaN)})`
  })

  // W2
  const sizes = [...results.meta.config.broadcastSizes].sort((a, b) => a - b)
  const small = sizes[0] as number
  const large = sizes[sizes.length - 1] as number
  const bl = broadcastSummary(results, large, BASELINE)
  const sl = broadcastSummary(results, large, SUBJECT)
  const ss = broadcastSummary(results, small, SUBJECT)
  const n = (size: number): string => size.toLocaleString('en-US')
  list.push(
    { workload: 'broadcast', pass: sl.firstToLast <= 1300, text: `${n(large)} clients: last event delivered ${fmt(sl.firstToLast)} ms after the first publish (target <= 1,300 ms)` },
    { workload: 'broadcast', pass: sl.scheduleP99 <= 300, text: `${n(large)} clients: p99 from the schedule ${fmt(sl.scheduleP99, 1)} ms (target <= 300 ms)` },
    { workload: 'broadcast', pass: sl.serverCpuMs <= 0.2 * bl.serverCpuMs, text: `${n(large)} clients: server CPU ${fmt(sl.serverCpuMs / bl.serverCpuMs, 2)}x the baseline's (${fmt(sl.serverCpuMs)} vs ${fmt(bl.serverCpuMs)} ms; target <= 0.2x)` },
    { workload: 'broadcast', pass: sl.peakRss <= 1.5 * bl.peakRss, text: `${n(large)} clients: server peak RSS ${fmt(sl.peakRss / bl.peakRss, 2)}x the baseline's (${fmt(sl.peakRss / 2 ** 20, 1)} vs ${fmt(bl.peakRss / 2 ** 20, 1)} MiB; target <= 1.5x)` },
    { workload: 'broadcast', pass: ss.scheduleP99 <= 100, text: `${n(small)} clients: p99 from the schedule ${fmt(ss.scheduleP99, 1)} ms (target <= 100 ms)` }
  )
  const once = sizes.every(size => {
    const s = broadcastSummary(results, size, SUBJECT)
    return s.rounds > 0 && s.errors.length === 0 && s.duplicates === 0 && s.gaps === 0 && s.unexpected === 0
  })
  list.push({ workload: 'broadcast', pass: once, text: 'fastify-sse-stream delivered every event exactly once to every client, every round (no duplicate, no gap)' })

  // W3
  const heap = (key: string): number => broadcastSummary(results, large, key).idleHeapPerConnection
  const mine = heap(SUBJECT)
  list.push({ workload: 'idle', pass: mine <= 5.5 * 1024, text: `fastify-sse-stream ${fmt(mine / 1024, 2)} KB heap per idle subscriber (target <= 5.5 KB)` })
  const others = peers.map(p => ({ label: p.label, heap: heap(p.key) })).filter(p => Number.isFinite(p.heap)).sort((a, b) => a.heap - b.heap)
  list.push({
    workload: 'idle',
    pass: Number.isFinite(mine) && others.every(p => mine < p.heap),
    text: `the lowest of the plugins (next: ${others[0] === undefined ? 'none' : `${others[0].label} ${fmt(others[0].heap / 1024, 2)} KB`})`
  })

  // W4. The hand-written loop waits for drain, so what it pulls while the client is stalled is what
  // the socket buffers hold (kernel memory, outside any process's RSS): the subject may pull no more
  // than that, plus 1 MiB of frames.
  const drop = dropSummary(results, SUBJECT).result
  const baseDrop = dropSummary(results, BASELINE).result
  const extra = drop === undefined || baseDrop === undefined
    ? Number.NaN
    : (drop.stall.pulled - baseDrop.stall.pulled) * subject.bytesPerEvent
  list.push(
    {
      workload: 'drop',
      pass: drop !== undefined && drop.within1s === drop.clients && drop.dropped === drop.clients,
      text: `fastify-sse-stream finalized ${drop === undefined ? 'n/a' : `${drop.within1s} of ${drop.clients}`} dropped clients' sources within 1 s (target: all)`
    },
    {
      workload: 'drop',
      pass: extra <= 2 ** 20,
      text: `stalled client: fastify-sse-stream pulled ${drop === undefined ? 'n/a' : fmt(drop.stall.pulled)} values, the hand-written loop ` +
        `${baseDrop === undefined ? 'n/a' : fmt(baseDrop.stall.pulled)}: ${fmt(extra / 1024)} KB of frames beyond the socket buffers (target <= 1,024 KB)`
    },
    {
      workload: 'drop',
      pass: drop?.stall.finalizedAfterMs != null && drop.stall.finalizedAfterMs <= 1000,
      text: `stalled client: its source finalized ${drop?.stall.finalizedAfterMs == null ? 'never (within the wait)' : `${fmt(Math.max(0, drop.stall.finalizedAfterMs))} ms`} after it left (target <= 1,000 ms)`
    }
  )
  return list
}
