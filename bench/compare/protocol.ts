// The messages between the orchestrator (run.ts) and its server and client processes, over IPC.

export type ServerCommand =
  | { type: 'memory' }
  | { type: 'arm' }
  | { type: 'burst', events: number, intervalMs: number }
  | { type: 'measure' }
  | { type: 'drop-counters' }
  | { type: 'stall-counters' }

export type ServerMessage =
  | { type: 'ready', port: number, heap: number, rss: number }
  | { type: 'memory', heap: number, rss: number, subscribers: number }
  | { type: 'armed' }
  | { type: 'published', lateMs: number }
  | { type: 'measured', cpuMs: number, peakRss: number, rss: number, errors: number }
  | { type: 'drop-counters', opened: number, finalizedAt: Array<[string, number]> }
  | { type: 'stall-counters', pulled: number, finalizedAt: number | null, exhausted: boolean }
  | { type: 'error', message: string }

export type ClientCommand =
  | { type: 'stream', url: string, events: number }
  | { type: 'connect', url: string, clients: number, events: number }
  | { type: 'start-burst' }
  | { type: 'finish' }
  | { type: 'drop', url: string, clients: number }
  | { type: 'stall', url: string }
  | { type: 'leave' }

export interface StreamResult { events: number, bytes: number, ms: number, cpuMs: number }
export interface BroadcastResult {
  clients: number
  events: number
  unique: number
  duplicates: number
  unexpected: number
  gaps: number
  clientsWithGaps: number
  fromSchedule: { p50: number, p99: number, max: number }
  fromPublish: { p50: number, p99: number, max: number }
  /** First publish (its publish time) to the last delivery, ms. */
  firstToLast: number
  cpuMs: number
}

export type ClientMessage =
  | { type: 'streamed', result: StreamResult }
  | { type: 'connected', connected: number, errors: number, cpuMs: number }
  | { type: 'delivered', result: BroadcastResult }
  | { type: 'dropped', droppedAt: Array<[string, number]>, errors: number, cpuMs: number }
  | { type: 'stalled', eventsRead: number, bytesRead: number }
  | { type: 'left', at: number }
  | { type: 'error', message: string }
