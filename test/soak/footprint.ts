import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import { forceGc } from '../fixtures/gc.js'

/** What a leak in the plugin would grow, in this process and on the app's server. */
export interface Footprint {
  /** Heap in use after a full garbage collection, in bytes. */
  heapUsed: number
  /** Timers that keep the process alive (Node does not list unref'd ones, such as the heartbeat clocks). */
  timers: number
  /** Listeners on the app's HTTP server, by event. */
  serverListeners: Record<string, number>
  /** Connections the server holds. */
  connections: number
}

export function connectionsOf (app: FastifyInstance): Promise<number> {
  return new Promise((resolve, reject) => {
    app.server.getConnections((err, count) => { if (err === null) resolve(count); else reject(err) })
  })
}

export function timersNow (): number {
  return process.getActiveResourcesInfo().filter(kind => kind === 'Timeout').length
}

/**
 * The heap in use once collections stop freeing anything. What one collection finds unreachable may
 * hold native handles (sockets, HTTP parsers) whose weak callbacks run after it, on the event loop:
 * only the next collection frees what they held. Read right after one, the heap measured 3 MB more
 * than after the next, some runs, and not others.
 */
async function settledHeap (): Promise<number> {
  let used = Number.POSITIVE_INFINITY
  for (let round = 0; round < SETTLE_ROUNDS; round++) {
    forceGc()
    await sleep(SETTLE_PAUSE_MS)
    const now = process.memoryUsage().heapUsed
    if (now > used - SETTLED_BYTES) return Math.min(now, used)
    used = now
  }
  return used
}

const SETTLE_ROUNDS = 10
const SETTLE_PAUSE_MS = 20
/** Less than this freed by a round: the heap has settled. */
const SETTLED_BYTES = 64 * 1024

export async function footprintOf (app: FastifyInstance): Promise<Footprint> {
  const connections = await connectionsOf(app)
  const serverListeners: Record<string, number> = {}
  for (const event of app.server.eventNames()) serverListeners[String(event)] = app.server.listenerCount(event)
  return { heapUsed: await settledHeap(), timers: timersNow(), serverListeners, connections }
}
