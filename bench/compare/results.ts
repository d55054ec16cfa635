// The shape of a comparison's results file (results/latest.json): what one run measured, per run
// and summarized per system, and where the report reads it from.
import type { BroadcastResult } from './protocol.js'

export interface StreamRun { eventsPerSecond: number, bytesPerEvent: number, ms: number, serverCpuMs: number, clientCpuMs: number, peakRss: number }

export interface BroadcastRun {
  delivery: BroadcastResult
  serverCpuMs: number
  peakRss: number
  /** How late the producer's last publish was against its schedule (its own event loop's lag). */
  publishLateMs: number
  connectClientCpuMs: number
  /** Idle memory per connection: after gc, against the same process before any connection. */
  idleHeapPerConnection: number
  idleRssPerConnection: number
}

export interface DropRun {
  clients: number
  dropped: number
  opened: number
  finalized: number
  within1s: number
  /** Finalized within finalizeWaitMs (5 s; 1.5 s in a quick run). */
  withinWait: number
  /** Slowest finalization after its client left, ms (of those finalized). */
  slowestMs: number
  clientCpuMs: number
  stall: {
    eventsRead: number
    pulled: number
    exhausted: boolean
    /** Resident peak minus resident size when the stall began. */
    rssGrowth: number
    peakRss: number
    /** ms from the client leaving to the source's finally; null: not within the wait; negative: before it left. */
    finalizedAfterMs: number | null
  }
}

export interface Run<T> { system: string, round: number, result?: T, error?: string, serverErrors: string[] }

export interface Results {
  meta: {
    date: string
    quick: boolean
    machine: { cpu: string, cores: number, node: string, os: string, memory: string }
    config: {
      rounds: number
      streamEvents: number
      broadcastSizes: number[]
      broadcastEvents: number
      intervalMs: number
      dropClients: number
      stallMs: number
      stallValues: number
      finalizeWaitMs: number
      socketBufferBytes: number
    }
    durationMs: number
  }
  systems: Array<{ key: string, label: string, plugin: boolean }>
  stream: Array<Run<StreamRun>>
  broadcast: Record<string, Array<Run<BroadcastRun>>>
  drop: Array<Run<DropRun>>
}
