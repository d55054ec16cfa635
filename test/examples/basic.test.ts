import t from 'tap'
import { openStream } from '../../lib/testing.js'
import { build } from '../../examples/basic.js'
import { closeApp } from '../fixtures/http.js'

t.test('sends Event 0 to Event 4, one per interval, then ends the stream', async t => {
  const app = await build({ intervalMs: 20 })
  t.teardown(() => app.close())
  const started = performance.now()
  const response = await app.inject({ url: '/events' })
  const elapsed = performance.now() - started
  t.equal(response.statusCode, 200)
  t.match(response.headers['content-type'], /^text\/event-stream/)
  t.equal(response.payload, [0, 1, 2, 3, 4].map(i => `data: Event ${i}\n\n`).join(''))
  t.ok(elapsed >= 4 * 20 - 5, `the four pauses between five events took place (${Math.round(elapsed)} ms)`)
})

t.test('the count is configurable', async t => {
  const app = await build({ count: 2, intervalMs: 0 })
  t.teardown(() => app.close())
  const response = await app.inject({ url: '/events' })
  t.equal(response.payload, 'data: Event 0\n\ndata: Event 1\n\n')
})

t.test('a client that leaves mid-pause ends the stream without waiting for the pause', async t => {
  const app = await build({ intervalMs: 60_000 })
  t.teardown(() => closeApp(app))
  const stream = await openStream(app, '/events')
  const [first] = await stream.take(1)
  t.equal(first?.data, 'Event 0')
  const started = performance.now()
  await stream.close()
  t.ok(performance.now() - started < 5000, 'the generator stopped long before its 60 s pause ended')
  t.equal(app.sse.streams, 0)
})
