// fastify-sse-stream with declared events (workload 1 only): the same `{ sse: true }` generator route,
// its ticks declared as the unnamed event in the route's response schema, so each is serialized by
// fast-json-stringify compiled once from the schema instead of JSON.stringify. Same bytes on the wire.
import type { AddressInfo } from 'node:net'
import Fastify from 'fastify'
import { Type } from 'typebox'
import ssePlugin from '../../../lib/index.js'
import { sseEvents } from '../../../lib/typebox.js'
import type { BuildSystem } from '../system.js'

const Ticks = sseEvents({ message: Type.Object({ i: Type.Integer(), symbol: Type.String(), price: Type.Number() }) })

const build: BuildSystem = async sources => {
  const app = Fastify({ logger: false })
  await app.register(ssePlugin)
  app.get<{ Querystring: { n: string } }>('/stream', { sse: true, schema: { response: { 200: Ticks } } }, async function * (request) {
    yield * sources.ticks(Number(request.query.n))
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  return {
    port: (app.server.address() as AddressInfo).port,
    publish () { throw new Error('declared events run workload 1 only') },
    subscribers: () => 0,
    close: () => app.close()
  }
}
export default build
