// @fastify/sse as its README teaches: `{ sse: true }` routes and `reply.sse.send(asyncIterable)`.
// It has no broadcast facility: the broadcast is the README's "Connection Management" pattern
// (keepAlive, a first message, onClose) with a Set of contexts and one `send()` per client per event.
import { createRequire } from 'node:module'
import type { AddressInfo } from 'node:net'
import Fastify, { type FastifyReply, type FastifyPluginAsync } from 'fastify'
import type { BuildSystem, Tick } from '../system.js'

// Loaded untyped: its declarations augment `reply.sse` and the `sse` route option, as this
// project's own do, and one program cannot hold both.
const fastifySse = createRequire(import.meta.url)('@fastify/sse') as FastifyPluginAsync

/** The part of @fastify/sse's reply.sse this benchmark uses (its README's API). */
interface SseContext {
  send (source: unknown): Promise<void>
  keepAlive (): void
  onClose (callback: () => void): void
}
const sseOf = (reply: FastifyReply): SseContext => (reply as unknown as { sse: SseContext }).sse

/** The README's generators yield messages: `{ data }`, serialized by the plugin. */
async function * asMessages (source: AsyncIterable<Tick>): AsyncGenerator<{ data: Tick }> {
  for await (const value of source) yield { data: value }
}

const build: BuildSystem = async sources => {
  const app = Fastify({ logger: false })
  await app.register(fastifySse)
  const subscribers = new Set<SseContext>()

  app.get<{ Querystring: { n: string } }>('/stream', { sse: true }, async (request, reply) => {
    await sseOf(reply).send(asMessages(sources.ticks(Number(request.query.n))))
  })
  app.get('/broadcast', { sse: true }, async (_request, reply) => {
    const sse = sseOf(reply)
    sse.keepAlive()
    // As the README's pattern does: its head goes out with the first write, and a subscriber should
    // see its stream open at once, not at the first heartbeat (30 s).
    await sse.send({ data: 'connected' })
    subscribers.add(sse)
    sse.onClose(() => { subscribers.delete(sse) })
  })
  app.get<{ Querystring: { id: string } }>('/drop-source', { sse: true }, async (request, reply) => {
    const sse = sseOf(reply)
    const left = new AbortController()
    sse.onClose(() => { left.abort() })
    await sse.send(asMessages(sources.dropFeed(request.query.id, left.signal)))
  })
  app.get('/stall', { sse: true }, async (_request, reply) => {
    await sseOf(reply).send(asMessages(sources.stallFeed()))
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  return {
    port: (app.server.address() as AddressInfo).port,
    publish (payload) {
      for (const sse of subscribers) sse.send({ data: payload }).catch(() => {})
    },
    subscribers: () => subscribers.size,
    close: () => app.close()
  }
}
export default build
