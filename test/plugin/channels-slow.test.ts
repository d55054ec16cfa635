import t from 'tap'
import type { FastifyReply } from 'fastify'
import { createParser, type EventSourceMessage } from 'eventsource-parser'
import { openStream } from '../../lib/testing.js'
import { buildApp } from '../fixtures/app.js'
import { rawGet, urlOf } from '../fixtures/http.js'
import { logsOf } from '../fixtures/logs.js'
import { until } from '../fixtures/wait.js'

// A real client that stops reading: the plugin must neither buffer for it without bound nor let it
// delay anyone else, and it must get back everything it missed when it reconnects.

const TOO_SLOW = 'sse channel subscriber too slow: ended (it can resume from history with its Last-Event-ID)'
const BIG = 'x'.repeat(128 * 1024)

t.test('a client that stops reading is ended past maxSubscriberQueue, never delays the others, and resumes from history', async t => {
  const { app, logs } = await buildApp(t, { maxSubscriberQueue: 10, history: 1000, heartbeat: false })
  const channel = app.sse.channel('feed')
  const replies: FastifyReply[] = []
  app.get('/feed', (_request, reply) => {
    replies.push(reply)
    return reply.sse(({ lastEventId, signal }) => channel.subscribe({ lastEventId, signal }))
  })
  const base = await urlOf(app)
  const slow = await rawGet(base + '/feed')
  slow.response.pause()
  const fast = await Promise.all([1, 2, 3].map(() => openStream(app, '/feed')))

  // Publish big events until the slow client's socket is full and its queue passes the limit.
  const ids: string[] = []
  while (logsOf(logs, TOO_SLOW).length === 0) {
    if (ids.length === 400) throw new Error('the slow subscriber was never ended')
    ids.push(await channel.publish({ n: ids.length, big: BIG }))
    await new Promise(resolve => setImmediate(resolve))
  }
  t.ok(ids.length > 10, `ended after ${ids.length} events`)
  t.match(logsOf(logs, TOO_SLOW), [{ level: 40, channel: 'feed', maxSubscriberQueue: 10 }], 'logged, with the limit')
  t.equal(logsOf(logs, TOO_SLOW).length, 1, 'once')
  t.equal(channel.size, 3, 'only the slow one is gone')

  // The app holds nothing more for it, however much is published.
  const held = replies[0]!.raw.writableLength
  for (let i = 0; i < 20; i++) {
    ids.push(await channel.publish({ n: ids.length, big: BIG }))
    await new Promise(resolve => setImmediate(resolve))
  }
  t.ok(held < 4 * BIG.length, `the server buffers ${held} bytes for it`)
  t.equal(replies[0]!.raw.writableLength, held, 'and no more after 20 more events')
  const delivered = await Promise.all(fast.map(stream => stream.take(ids.length, 20_000)))
  t.ok(delivered.every(events => events.map(event => event.id).join() === ids.join()),
    'the others got every event, in order, while it was stuck')
  t.equal(logsOf(logs, TOO_SLOW).length, 1, 'and none of them was ended')

  // It reads again: what was on its way arrives, then its stream ends; it resumes with its last id.
  const events: EventSourceMessage[] = []
  const parser = createParser({ onEvent: event => { events.push(event) } })
  slow.response.setEncoding('utf8')
  slow.response.on('data', chunk => parser.feed(chunk))
  const ended = new Promise(resolve => slow.response.on('end', resolve))
  slow.response.resume()
  await ended
  const got = events.map(event => event.id)
  t.same(got, ids.slice(0, got.length), `received the first ${got.length} events, in order, before the end`)
  const resumed = await openStream(app, '/feed', { lastEventId: got.at(-1)! })
  const rest = await resumed.take(ids.length - got.length, 20_000)
  t.same(rest.map(event => event.id), ids.slice(got.length), 'then exactly the rest, from history')
  t.notOk(rest.some(event => event.event !== undefined), 'no gap: the history covered it')
  await Promise.all([...fast, resumed].map(stream => stream.close()))
})

t.test('a client that stops reading only briefly is not ended', async t => {
  const { app, logs } = await buildApp(t, { maxSubscriberQueue: 50, heartbeat: false })
  const channel = app.sse.channel('feed')
  app.get('/feed', (_request, reply) => reply.sse(({ signal }) => channel.subscribe({ signal })))
  const base = await urlOf(app)
  const client = await rawGet(base + '/feed')
  const events: EventSourceMessage[] = []
  const parser = createParser({ onEvent: event => { events.push(event) } })
  client.response.setEncoding('utf8')
  client.response.on('data', chunk => parser.feed(chunk))
  client.response.pause()
  const ids: string[] = []
  for (let n = 0; n < 30; n++) ids.push(await channel.publish({ n, big: BIG }))
  client.response.resume()
  await until(() => events.length === 30, 10_000, 'every event')
  t.same(events.map(event => event.id), ids)
  t.same(logsOf(logs, TOO_SLOW), [])
  client.request.destroy()
})
