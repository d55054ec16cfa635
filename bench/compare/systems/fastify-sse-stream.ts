// fastify-sse-stream as its README teaches: `{ sse: true }` generator routes, a channel and the
// one-line subscribe route for the broadcast, the stream context's signal for a feed that waits.
import type { AddressInfo } from 'node:net'
import Fastify from 'fastify'
import ssePlugin from '../../../lib/index.js'
import type { BuildSystem } from '../system.js'

const build: BuildSystem = async sources => {
  const app = Fastify({ logger: false })
  await app.register(ssePlugin)
  const channel = app.sse.channel('ticks')
  app.get<{ Querystring: { n: string } }>('/stream', { sse: true }, async function * (request) {
    yield * sources.ticks(Number(request.query.n))
  })
  app.get('/broadcast', (request, reply) => reply.sse(channel.subscribe({ lastEventId: request.lastEventId })))
  app.get<{ Querystring: { id: string } }>('/drop-source', (request, reply) =>
    reply.sse(({ signal }) => sources.dropFeed(request.query.id, signal)))
  app.get('/stall', { sse: true }, async function * () { yield * sources.stallFeed() })
  await app.listen({ port: 0, host: '127.0.0.1' })
  return {
    port: (app.server.address() as AddressInfo).port,
    publish (payload) { channel.publish(payload).catch(err => { throw err }) },
    subscribers: () => channel.size,
    close: () => app.close()
  }
}
export default build
