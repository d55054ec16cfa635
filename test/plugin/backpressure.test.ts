import t from 'tap'
import type { FastifyReply } from 'fastify'
import { buildApp } from '../fixtures/app.js'
import { bodyOf, bufferedSamples, rawGet, urlOf } from '../fixtures/http.js'
import { until } from '../fixtures/wait.js'

const FRAME = 64 * 1024

t.test('a client that stops reading holds the generator still, with the server buffer bounded and no heartbeats queued', async t => {
  const { app } = await buildApp(t, { heartbeat: 20 })
  let pulled = 0
  let raw: FastifyReply['raw'] | undefined
  app.get('/events', (_request, reply) => {
    raw = reply.raw
    return reply.sse(async function * () { for (;;) { pulled++; yield 'x'.repeat(FRAME) } })
  })
  const base = await urlOf(app)
  const { request, response } = await rawGet(base + '/events')
  response.pause()
  let last = -1
  await until(() => { const still = pulled === last; last = pulled; return still }, 5000, 'the generator to stop')
  const heldAt = pulled
  const buffered = await bufferedSamples(raw)
  t.equal(pulled, heldAt, `held still at ${heldAt} values while the client reads nothing`)
  t.ok(buffered[0]! >= 0 && buffered[0]! < 4 * FRAME, `server-side buffer stays bounded (${buffered[0]} bytes)`)
  t.same(new Set(buffered).size, 1, 'and does not grow: a heartbeat is skipped while the socket is full')
  request.destroy()
})

t.test('when the client reads again, the stream resumes and every value arrives once, in order', async t => {
  const { app } = await buildApp(t)
  const COUNT = 150
  let pulled = 0
  app.get('/events', (_request, reply) => reply.sse(async function * () {
    for (let i = 0; i < COUNT; i++) { pulled++; yield `${i} ${'x'.repeat(FRAME)}` }
  }))
  const base = await urlOf(app)
  const { response } = await rawGet(base + '/events')
  response.pause()
  let last = -1
  await until(() => { const still = pulled === last; last = pulled; return still }, 5000, 'the generator to stop')
  t.ok(pulled < COUNT, `paused at ${pulled} of ${COUNT} values`)
  const body = await bodyOf(response)
  const seen = [...body.matchAll(/^data: (\d+) /gm)].map(match => Number(match[1]))
  t.same(seen, Array.from({ length: COUNT }, (_, i) => i))
})
