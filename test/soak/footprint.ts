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

export async function footprintOf (app: FastifyInstance): Promise<Footprint> {
  const connections = await connectionsOf(app)
  const serverListeners: Record<string, number> = {}
  for (const event of app.server.eventNames()) serverListeners[String(event)] = app.server.listenerCount(event)
  forceGc()
  return { heapUsed: process.memoryUsage().heapUsed, timers: timersNow(), serverListeners, connections }
}
