import t from 'tap'
import { EventSource } from 'eventsource'
import { buildApp } from '../fixtures/app.js'
import { urlOf } from '../fixtures/http.js'

t.test('a real EventSource client receives messages, named events and ids, and resumes after a reconnect', async t => {
  const { app } = await buildApp(t, { retry: 20 })
  const seenIds: Array<string | undefined> = []
  // Three events per connection, continuing after the id the client sends back.
  app.get('/counter', { sse: true }, async function * (request) {
    seenIds.push(request.lastEventId)
    const start = request.lastEventId === undefined ? 0 : Number(request.lastEventId) + 1
    for (let i = start; i < start + 3; i++) yield { id: i, event: i % 2 === 0 ? 'even' : 'odd', data: { i } }
  })
  const base = await urlOf(app)
  const source = new EventSource(base + '/counter')
  t.teardown(() => { source.close() })
  const received: Array<{ type: string, id: string, data: unknown }> = []
  await new Promise<void>(resolve => {
    const onEvent = (event: MessageEvent): void => {
      received.push({ type: event.type, id: event.lastEventId, data: JSON.parse(event.data) })
      if (received.length === 9) resolve()
    }
    source.addEventListener('even', onEvent)
    source.addEventListener('odd', onEvent)
  })
  source.close()
  t.same(received.map(event => event.data), Array.from({ length: 9 }, (_, i) => ({ i })), 'nothing missed, nothing repeated')
  t.same(received.map(event => event.type).slice(0, 3), ['even', 'odd', 'even'])
  t.same(received.map(event => event.id).slice(0, 4), ['0', '1', '2', '3'])
  t.same(seenIds, [undefined, '2', '5'], 'each reconnect carried the last id it had received')
})

t.test('a real EventSource client sees a multi-line, unicode, empty and leading-space data exactly', async t => {
  const { app } = await buildApp(t)
  const payloads = ['line 1\nline 2\r\nline 3\rline 4', 'héllo 👋', '', ' leading space', 'trailing\n']
  app.get('/data', (_request, reply) => reply.sse(payloads))
  const base = await urlOf(app)
  const source = new EventSource(base + '/data')
  t.teardown(() => { source.close() })
  const received: string[] = []
  await new Promise<void>(resolve => {
    source.onmessage = event => {
      received.push(event.data)
      if (received.length === payloads.length) resolve()
    }
  })
  source.close()
  t.same(received, ['line 1\nline 2\nline 3\nline 4', 'héllo 👋', '', ' leading space', 'trailing\n'])
})
