import t from 'tap'
import { EventSource } from 'eventsource'
import { build } from '../../examples/formats.js'
import { nextEvents } from '../fixtures/examples.js'
import { closeApp, urlOf } from '../fixtures/http.js'

t.test('writes a comment and a retry line, then update events with ids carrying the time', async t => {
  const app = await build({ intervalMs: 5 })
  t.teardown(() => app.close())
  const before = Date.now() / 1000
  const response = await app.inject({ url: '/events' })
  const after = Date.now() / 1000
  const frames = response.payload.split('\n\n')
  t.equal(frames.pop(), '', 'the payload ends with a complete frame')
  t.equal(frames[0], ': This is a comment\nretry: 10000')
  t.equal(frames.length, 4)
  const times = frames.slice(1).map((frame, i) => {
    const match = /^id: (\d+)\nevent: update\ndata: (\{.*\})$/.exec(frame)
    t.ok(match, `frame ${i} has an id, the update type and JSON data: ${JSON.stringify(frame)}`)
    t.equal(match?.[1], String(i))
    return JSON.parse(match?.[2] ?? '{}').time as number
  })
  t.ok(times.every(time => time >= before && time <= after), 'each carries the time it was sent, in seconds')
  t.same([...times].sort((a, b) => a - b), times, 'in order')
})

t.test('a client dispatches update events by type, with their ids, and takes the retry interval', async t => {
  const app = await build({ intervalMs: 5, retryMs: 250 })
  t.teardown(() => closeApp(app))
  const lastEventIds: unknown[] = []
  app.addHook('onRequest', async request => { lastEventIds.push(request.headers['last-event-id']) })
  const source = new EventSource(await urlOf(app) + '/events')
  t.teardown(() => source.close())
  let messages = 0
  source.onmessage = () => { messages++ }
  const updates = await nextEvents(source, 'update', 3)
  t.same(updates.map(event => event.lastEventId), ['0', '1', '2'])
  t.equal(messages, 0, 'named events never reach onmessage')
  // The stream ended after three updates; the client comes back after the 250 ms it was given
  // (not its default 3 s) and, as it saw id 2, sends Last-Event-ID: 2.
  await nextEvents(source, 'update', 1, 2000)
  t.same(lastEventIds, [undefined, '2'])
})
