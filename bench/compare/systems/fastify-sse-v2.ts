// fastify-sse-v2 as its README teaches: `reply.sse(asyncIterable)` of `{ data: string }` messages,
// and "sending individual events" with `reply.sse(message)`. It has no broadcast facility: the
// broadcast is a Set of replies with one `reply.sse()` per client per event, cleaned up on
// `request.socket` 'close' as its README's note says.
import { createRequire } from 'node:module'
import type { AddressInfo } from 'node:net'
import Fastify, { type FastifyReply, type FastifyPluginAsync } from 'fastify'
import type { BuildSystem, Tick } from '../system.js'

// Loaded untyped: its declarations augment `reply.sse` and `reply.sseContext`, as this project's own do.
const { FastifySSEPlugin } = createRequire(import.meta.url)('fastify-sse-v2') as { FastifySSEPlugin: FastifyPluginAsync }

interface EventMessage { data?: string, comment?: string }
const sse = (reply: FastifyReply, source: AsyncIterable<EventMessage> | EventMessage): void => {
  (reply as unknown as { sse: (source: AsyncIterable<EventMessage> | EventMessage) => void }).sse(source)
}

/** Its messages carry strings: the README's sources stringify their data. */
async function * asMessages (source: AsyncIterable<Tick>): AsyncGenerator<EventMessage> {
  for await (const value of source) yield { data: JSON.stringify(value) }
}

const build: BuildSystem = async sources => {
  const app = Fastify({ logger: false })
  await app.register(FastifySSEPlugin)
  const subscribers = new Set<FastifyReply>()

  app.get<{ Querystring: { n: string } }>('/stream', (request, reply) => {
    sse(reply, asMessages(sources.ticks(Number(request.query.n))))
  })
  app.get('/broadcast', (request, reply) => {
    // The first reply.sse() writes the head; a comment, so the client sees the stream open at once.
    sse(reply, { comment: 'subscribed' })
    subscribers.add(reply)
    request.socket.on('close', () => { subscribers.delete(reply) })
  })
  app.get<{ Querystring: { id: string } }>('/drop-source', (request, reply) => {
    const left = new AbortController()
    request.socket.on('close', () => { left.abort() })
    sse(reply, asMessages(sources.dropFeed(request.query.id, left.signal)))
  })
  app.get('/stall', (_request, reply) => {
    sse(reply, asMessages(sources.stallFeed()))
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  return {
    port: (app.server.address() as AddressInfo).port,
    publish (payload) {
      const data = JSON.stringify(payload)
      for (const reply of subscribers) sse(reply, { data })
    },
    subscribers: () => subscribers.size,
    close: () => app.close()
  }
}
export default build
