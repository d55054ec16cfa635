import t from 'tap'
import { createParser, type EventSourceMessage } from 'eventsource-parser'
import { GAP_EVENT } from '../../lib/index.js'
import { rawGet } from '../fixtures/http.js'
import { spawnFixture } from '../fixtures/processes.js'

// Issue 8, item 6: two processes whose in-memory histories began in the same millisecond handed out
// the same ids, so a client that moved from one to the other resumed from the wrong events, unwarned.

/** The first `count` events a GET of `url` receives, or those received within 2 s; the connection is then cut. */
async function firstEvents (url: string, count: number, headers: Record<string, string>): Promise<EventSourceMessage[]> {
  const { request, response } = await rawGet(url, headers)
  const events: EventSourceMessage[] = []
  const parser = createParser({ onEvent: event => { events.push(event) } })
  response.setEncoding('utf8')
  response.on('data', chunk => {
    parser.feed(chunk)
    if (events.length >= count) request.destroy()
  })
  const timer = setTimeout(() => request.destroy(), 2000)
  await new Promise(resolve => response.once('close', resolve))
  clearTimeout(timer)
  return events.slice(0, count)
}

t.test(`an id from another process is unknown: a "${GAP_EVENT}" event, even when both histories began in the same millisecond`, async t => {
  const env = { FIXED_NOW: String(Date.now()) }
  const [a, b] = await Promise.all([
    spawnFixture<{ url: string }>(t, 'channel-process.ts', env),
    spawnFixture<{ url: string }>(t, 'channel-process.ts', env)
  ])
  const fromA = await firstEvents(`${a.url}/news`, 1, { 'last-event-id': '1-1' })
  t.equal(fromA[0]!.event, GAP_EVENT)
  const ids = (await firstEvents(`${a.url}/news`, 4, { 'last-event-id': '1-1' })).slice(1).map(event => event.id)
  const fromB = await firstEvents(`${b.url}/news`, 4, { 'last-event-id': ids[0]! })
  const idsOfB = fromB.filter(event => event.event === undefined).map(event => event.id)
  t.notOk(idsOfB.some(id => ids.includes(id!)), 'the two processes never give the same id')
  t.match(fromB[0], { event: GAP_EVENT, id: ids[0] }, 'so B tells the client it may have missed events')
  t.same(fromB.slice(1).map(event => JSON.parse(event.data)), [{ n: 0 }, { n: 1 }, { n: 2 }], 'then replays all it keeps')
})
