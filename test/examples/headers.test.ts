import t from 'tap'
import { EventSource } from 'eventsource'
import { build } from '../../examples/headers.js'
import { firstOutcome, nextEvents } from '../fixtures/examples.js'
import { closeApp, urlOf } from '../fixtures/http.js'

t.test('the stream goes out with the event-stream headers, keeping headers the route set', async t => {
  const app = await build({ intervalMs: 0 })
  t.teardown(() => app.close())
  const response = await app.inject({ url: '/events' })
  t.equal(response.statusCode, 200)
  t.equal(response.headers['content-type'], 'text/event-stream; charset=utf-8')
  t.equal(response.headers['cache-control'], 'no-cache')
  t.equal(response.headers.connection, 'keep-alive')
  t.equal(response.headers['x-accel-buffering'], 'no')
  t.equal(response.headers['x-example'], 'headers')
  t.equal(response.headers['content-length'], undefined, 'a stream has no length')
})

t.test('/plain sends the very same bytes, as text/plain', async t => {
  const app = await build({ intervalMs: 0 })
  t.teardown(() => app.close())
  const [sse, plain] = await Promise.all([app.inject({ url: '/events' }), app.inject({ url: '/plain' })])
  t.equal(plain.headers['content-type'], 'text/plain; charset=utf-8')
  t.equal(plain.payload, sse.payload)
  t.equal(sse.payload, [0, 1, 2, 3, 4].map(i => `data: Event ${i}\n\n`).join(''))
})

t.test('over HTTP/1.1 the stream is chunked and kept alive', async t => {
  const app = await build({ intervalMs: 0 })
  t.teardown(() => closeApp(app))
  const response = await fetch(await urlOf(app) + '/events', { headers: { accept: 'text/event-stream' } })
  t.equal(response.headers.get('transfer-encoding'), 'chunked')
  t.equal(response.headers.get('connection'), 'keep-alive')
  t.match(await response.text(), /^data: Event 0\n\n/)
})

t.test('an EventSource opens the event stream and receives its events', async t => {
  const app = await build({ intervalMs: 10 })
  t.teardown(() => closeApp(app))
  const source = new EventSource(await urlOf(app) + '/events')
  t.teardown(() => source.close())
  const messages = nextEvents(source, 'message', 5)
  const outcome = await firstOutcome(source)
  t.equal(outcome.type, 'open')
  t.same((await messages).map(m => m.data), ['Event 0', 'Event 1', 'Event 2', 'Event 3', 'Event 4'])
})

t.test('an EventSource refuses text/plain for good: it fails the connection and never retries', async t => {
  const app = await build({ intervalMs: 10 })
  t.teardown(() => closeApp(app))
  let requests = 0
  app.addHook('onRequest', async () => { requests++ })
  const source = new EventSource(await urlOf(app) + '/plain')
  t.teardown(() => source.close())
  const outcome = await firstOutcome(source) as Event & { message?: string }
  t.equal(outcome.type, 'error')
  t.match(outcome.message, /content type/i)
  // A client that means to retry is CONNECTING after an error; CLOSED means it gave up.
  t.equal(source.readyState, EventSource.CLOSED, 'closed, not reconnecting')
  t.equal(requests, 1)
})
