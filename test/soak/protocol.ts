import type { Published, Verdict } from '../faults/checker.js'

// What the soak test and its clients' process (./clients.ts) say to each other over IPC.

/** The soak's routes: an `async function*` route, the README's channel route, a source that throws mid-stream. */
export const ROUTES = ['generator', 'channel', 'throws'] as const
export type Route = typeof ROUTES[number]

/** The message of the error the throwing route throws (the only error the app may log). */
export const THROWN = 'soak: thrown mid-stream'

/** The storm's channel route. */
export const STORM_PATH = '/storm'

export type Command =
  /** Run soak clients against `base` for `ms` (or until `maxClients` started), at most `concurrency` at once. */
  | { type: 'soak', base: string, ms: number, maxClients: number, concurrency: number, seed: number }
  /** Open `clients` EventSources on `base` + STORM_PATH; answered once each has received an event. */
  | { type: 'storm', base: string, clients: number, seed: number }
  /** The producer stopped: wait until each storm client has the last event, then check every record. */
  | { type: 'check', published: Published }

export interface SoakReport {
  type: 'soaked'
  /** EventSources created. */
  clients: number
  /** Of which the server answered (`open` fired). */
  opened: number
  byRoute: Record<Route, number>
  /** Events received, every route. */
  events: number
  /** Highest number of EventSources open at once. */
  peakOpen: number
  /** ms from a client's start to its stream's opening: mean and highest. */
  openMsMean: number
  openMsMax: number
  /** Clients that left as they had planned: as they started, after reading their number of events, after their time. */
  leftEarly: number
  leftAfterReading: number
  leftOnTime: number
  /** Throwing streams that ended after every event they yielded had arrived. */
  endedByThrow: number
  /** What should not happen (an event out of sequence, a stream ended by the server...), first few in words. */
  problems: string[]
  problemCount: number
  /** CPU time of the clients' process for the soak, in ms. */
  cpuMs: number
}

export interface StormReady {
  type: 'storm-ready'
  /** Clients that received at least one event. */
  ready: number
  ms: number
}

export interface StormVerdict {
  type: 'storm-verdict'
  verdict: Verdict
  /** Every client received the last event published. */
  caughtUp: boolean
  /** Requests the clients sent (first connections and reconnections). */
  requests: number
  /** Reconnections their EventSources made by themselves. */
  dropped: number
  /** EventSources that gave up (and came back as new ones), by reason. */
  failures: Record<string, number>
  /** CPU time of the clients' process from the storm's first client to the verdict, in ms. */
  cpuMs: number
}

export type Report = SoakReport | StormReady | StormVerdict | { type: 'failed', error: string }
