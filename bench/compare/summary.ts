// Pure: a results file -> one summary row per system and workload (medians over the rounds that
// succeeded; counts summed), which both the targets and the report read.
import type { Results, Run } from './results.js'
import { median } from './stats.js'

export interface StreamSummary {
  eventsPerSecond: number
  bytesPerEvent: number
  peakRss: number
  serverCpuMs: number
  clientCpuMs: number
  /** The client's CPU time over the stream's duration: near 1, it was the bottleneck. */
  clientCpuShare: number
  rounds: number[]
  errors: string[]
}
export interface BroadcastSummary {
  scheduleP50: number
  scheduleP99: number
  publishP50: number
  publishP99: number
  firstToLast: number
  serverCpuMs: number
  peakRss: number
  clientCpuMs: number
  /** The client's CPU time over the first publish to the last delivery: near 1, it was the bottleneck. */
  clientCpuShare: number
  duplicates: number
  gaps: number
  unexpected: number
  idleHeapPerConnection: number
  idleRssPerConnection: number
  rounds: number
  errors: string[]
}

function ok<T> (runs: Array<Run<T>>, system: string): { results: T[], errors: string[] } {
  const mine = runs.filter(run => run.system === system)
  return {
    results: mine.flatMap(run => run.result === undefined ? [] : [run.result]),
    errors: mine.flatMap(run => run.error === undefined ? [] : [`round ${run.round + 1}: ${run.error}`])
  }
}

const medianOf = <T>(items: T[], pick: (item: T) => number): number => items.length === 0 ? Number.NaN : median(items.map(pick))

export function streamSummary (results: Results, system: string): StreamSummary {
  const { results: runs, errors } = ok(results.stream, system)
  return {
    eventsPerSecond: medianOf(runs, r => r.eventsPerSecond),
    bytesPerEvent: medianOf(runs, r => r.bytesPerEvent),
    peakRss: medianOf(runs, r => r.peakRss),
    serverCpuMs: medianOf(runs, r => r.serverCpuMs),
    clientCpuMs: medianOf(runs, r => r.clientCpuMs),
    clientCpuShare: medianOf(runs, r => r.clientCpuMs / r.ms),
    rounds: runs.map(r => r.eventsPerSecond),
    errors
  }
}

export function broadcastSummary (results: Results, size: number, system: string): BroadcastSummary {
  const { results: runs, errors } = ok(results.broadcast[String(size)] ?? [], system)
  return {
    scheduleP50: medianOf(runs, r => r.delivery.fromSchedule.p50),
    scheduleP99: medianOf(runs, r => r.delivery.fromSchedule.p99),
    publishP50: medianOf(runs, r => r.delivery.fromPublish.p50),
    publishP99: medianOf(runs, r => r.delivery.fromPublish.p99),
    firstToLast: medianOf(runs, r => r.delivery.firstToLast),
    serverCpuMs: medianOf(runs, r => r.serverCpuMs),
    peakRss: medianOf(runs, r => r.peakRss),
    clientCpuMs: medianOf(runs, r => r.delivery.cpuMs),
    clientCpuShare: medianOf(runs, r => r.delivery.cpuMs / r.delivery.firstToLast),
    duplicates: runs.reduce((sum, r) => sum + r.delivery.duplicates, 0),
    gaps: runs.reduce((sum, r) => sum + r.delivery.gaps, 0),
    unexpected: runs.reduce((sum, r) => sum + r.delivery.unexpected, 0),
    idleHeapPerConnection: medianOf(runs, r => r.idleHeapPerConnection),
    idleRssPerConnection: medianOf(runs, r => r.idleRssPerConnection),
    rounds: runs.length,
    errors
  }
}

export function dropSummary (results: Results, system: string): { result?: Results['drop'][number]['result'], errors: string[] } {
  const { results: runs, errors } = ok(results.drop, system)
  return { result: runs[0], errors }
}
