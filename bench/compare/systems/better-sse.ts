// better-sse as its documentation's Fastify recipe shows: `createSession(request.raw, reply.raw)`
// in a route, `session.iterate()` for a source, and a channel (`register`, `broadcast`) for the
// broadcast. It has no way to end a session: a finished stream ends the raw response itself.
import type { AddressInfo } from 'node:net'
import Fastify from 'fastify'
import { createChannel, createSession } from 'better-sse'
import type { BuildSystem } from '../system.js'

const build: BuildSystem = async sources => {
  const app = Fastify({ logger: false })
  const channel = createChannel()

  app.get<{ Querystring: { n: string } }>('/stream', async (request, reply) => {
    const session = await createSession(request.raw, reply.raw)
    await session.iterate(sources.ticks(Number(request.query.n)))
    reply.raw.end()
  })
  app.get('/broadcast', async (request, reply) => {
    channel.register(await createSession(request.raw, reply.raw))
  })
  app.get<{ Querystring: { id: string } }>('/drop-source', async (request, reply) => {
    const session = await createSession(request.raw, reply.raw)
    const left = new AbortController()
    session.once('disconnected', () => { left.abort() })
    // A push after the client left throws, which ends the iteration (and so the source).
    await session.iterate(sources.dropFeed(request.query.id, left.signal)).catch(() => {})
  })
  app.get('/stall', async (request, reply) => {
    const session = await createSession(request.raw, reply.raw)
    await session.iterate(sources.stallFeed()).catch(() => {})
    reply.raw.end()
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  return {
    port: (app.server.address() as AddressInfo).port,
    publish (payload) { channel.broadcast(payload) },
    subscribers: () => channel.sessionCount,
    close: () => app.close()
  }
}
export default build
