import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import { STORM_PATH, THROWN } from './protocol.js'

// The routes the soak runs against, as an app would write them, counting what their sources did.

/** Starts and `finally` runs of the generators, requests by route, and storm requests that resumed. */
export class Counts {
  generatorStarts = 0
  generatorFinalized = 0
  requests = 0
  stormFresh = 0
  /** Storm requests that carried a `Last-Event-ID`. */
  stormResumes = 0
}

/** The reconnection delay the storm's streams tell their clients: they all come back together. */
export const STORM_RETRY_MS = 500

/** A positive integer from the query (the clients' process draws them from the seed), else `fallback`. */
function countOf (query: unknown, name: string, fallback: number): number {
  const value = Number((query as Record<string, unknown>)[name])
  return Number.isSafeInteger(value) && value > 0 ? value : fallback
}

export function soakRoutes (app: FastifyInstance, counts: Counts): void {
  const channel = app.sse.channel('soak')
  const storm = app.sse.channel('storm')

  // Numbered events, `every` ms apart, until the client leaves.
  app.get('/soak/generator', { sse: true }, async function * (request, reply) {
    counts.requests++
    const every = countOf(request.query, 'every', 10)
    const { signal } = reply.sseContext
    counts.generatorStarts++
    try {
      for (let n = 0; ; n++) {
        yield { id: String(n), data: n }
        await sleep(every, undefined, { signal })
      }
    } finally {
      counts.generatorFinalized++
    }
  })

  // The README's channel route.
  app.get('/soak/channel', (request, reply) => {
    counts.requests++
    return reply.sse(channel.subscribe({ lastEventId: request.lastEventId }))
  })

  // `throwAfter` numbered events, then an error.
  app.get('/soak/throws', (request, reply) => {
    counts.requests++
    const every = countOf(request.query, 'every', 10)
    const throwAfter = countOf(request.query, 'throwAfter', 1)
    return reply.sse(async function * ({ signal }) {
      counts.generatorStarts++
      try {
        for (let n = 0; n < throwAfter; n++) {
          yield { id: String(n), data: n }
          await sleep(every, undefined, { signal })
        }
        throw new Error(THROWN)
      } finally {
        counts.generatorFinalized++
      }
    })
  })

  app.get(STORM_PATH, (request, reply) => {
    if (request.lastEventId === undefined) counts.stormFresh++
    else counts.stormResumes++
    return reply.sse(storm.subscribe({ lastEventId: request.lastEventId }), { retry: STORM_RETRY_MS })
  })
}
