import t from 'tap'
import type { SseContext } from '../../lib/index.js'
import { buildApp } from '../fixtures/app.js'
import { bodyOf, rawGet, urlOf } from '../fixtures/http.js'
import { until } from '../fixtures/wait.js'

// app.sse.stats(): what an operator asks of a server full of long requests.

const ES = { accept: 'text/event-stream' }

t.test('a fresh app: nothing open, every counter at zero, every reason listed', async t => {
  const { app } = await buildApp(t)
  t.strictSame(app.sse.stats(), {
    open: 0,
    sources: 0,
    routes: {},
    events: 0,
    bytes: 0,
    refusals: { 'max-streams': 0, 'client-streams': 0, 'channel-subscribers': 0, 'connect-rate': 0 },
    ends: {
      'source-done': 0,
      'client-gone': 0,
      error: 0,
      'server-closing': 0,
      'too-slow': 0,
      'max-lifetime': 0,
      'write-timeout': 0,
      expired: 0
    },
    channels: {},
    replays: 0,
    gaps: 0
  })
})

t.test('open streams by route pattern (never the URL), subscribers by channel, events and bytes of open and ended streams', async t => {
  const { app } = await buildApp(t)
  const waitForAbort = ({ signal }: SseContext) => (async function * () {
    yield 'ab'
    await new Promise(resolve => signal.addEventListener('abort', resolve))
  })()
  app.get('/rooms/:room', (request, reply) => reply.sse(waitForAbort))
  app.get('/news', (request, reply) => reply.sse(app.sse.channel('news').subscribe({ lastEventId: request.lastEventId })))
  app.get('/done', (_request, reply) => reply.sse(['x', 'y']))
  const base = await urlOf(app)
  const rooms = [await rawGet(base + '/rooms/1?token=secret', ES), await rawGet(base + '/rooms/2', ES)]
  const news = [await rawGet(base + '/news', ES), await rawGet(base + '/news', ES), await rawGet(base + '/news', ES)]
  t.teardown(() => { for (const { request } of [...rooms, ...news]) request.destroy() })
  t.equal(await bodyOf((await rawGet(base + '/done', ES)).response), 'data: x\n\ndata: y\n\n')
  await until(() => app.sse.channel('news').size === 3)
  const id = await app.sse.channel('news').publish('hello')
  // 'ab' twice, 'x' and 'y', and 'hello' (with its id) three times.
  const bytes = 2 * 'data: ab\n\n'.length + 'data: x\n\ndata: y\n\n'.length + 3 * `id: ${id}\ndata: hello\n\n`.length
  await until(() => app.sse.stats().bytes === bytes, 2000, `every byte to be written (${bytes})`)
  const stats = app.sse.stats()
  t.equal(stats.open, 5)
  t.equal(stats.sources, 5)
  t.strictSame(stats.routes, { 'GET /rooms/:room': 2, 'GET /news': 3 }, 'route patterns: no URL, no query string')
  t.strictSame(stats.channels, { news: 3 })
  t.equal(stats.events, 7)
  t.equal(stats.ends['source-done'], 1)

  rooms[0]!.request.destroy()
  await until(() => app.sse.stats().open === 4)
  const after = app.sse.stats()
  t.strictSame(after.routes, { 'GET /rooms/:room': 1, 'GET /news': 3 })
  t.equal(after.ends['client-gone'], 1)
  t.equal(after.events, 7, 'an ended stream\'s events stay counted')
  t.equal(after.bytes, stats.bytes, 'and its bytes')
})

t.test('each call returns a fresh object: changing one changes nothing in the plugin', async t => {
  const { app } = await buildApp(t)
  const stats = app.sse.stats()
  stats.ends['source-done'] = 99
  stats.refusals['max-streams'] = 99
  t.equal(app.sse.stats().ends['source-done'], 0)
  t.equal(app.sse.stats().refusals['max-streams'], 0)
})

t.test('replays and gap notices of channels are counted, and too-slow subscribers among the ends', async t => {
  const { app } = await buildApp(t, { history: 2, maxSubscriberQueue: 1 })
  const channel = app.sse.channel('feed')
  app.get('/feed', (request, reply) => reply.sse(channel.subscribe({ lastEventId: request.lastEventId })))
  const ids: string[] = []
  for (let i = 0; i < 4; i++) ids.push(await channel.publish(i))
  const base = await urlOf(app)
  // From the second-to-last id: replays what is kept. From the first: too old, a gap notice, then what is kept.
  const fine = await rawGet(base + '/feed', { ...ES, 'last-event-id': ids[2]! })
  const old = await rawGet(base + '/feed', { ...ES, 'last-event-id': ids[0]! })
  t.teardown(() => { fine.request.destroy(); old.request.destroy() })
  await until(() => app.sse.stats().replays === 2 && app.sse.stats().gaps === 1, 2000, 'two replays, one gap')

  const slow = await rawGet(base + '/feed', ES)
  slow.response.pause()
  t.teardown(() => { slow.request.destroy() })
  await until(() => channel.size === 3)
  // Too much for a client that reads nothing: its queue (1) overflows once its socket is full.
  const big = 'x'.repeat(256 * 1024)
  for (let i = 0; i < 40 && app.sse.stats().ends['too-slow'] === 0; i++) await channel.publish(big)
  await until(() => app.sse.stats().ends['too-slow'] >= 1, 5000, 'a too-slow end')
  t.pass('the slow subscriber was ended and counted')
})

t.test('a stream whose client left but whose source is still closing is no longer open, but still a source', async t => {
  const { app } = await buildApp(t)
  let finish = (): void => {}
  const stuck = new Promise<void>(resolve => { finish = resolve })
  // Awaits something that ignores the signal: it is finalized at its next yield only.
  app.get('/stuck', (_request, reply) => reply.sse(async function * () { yield 'a'; await stuck; yield 'b' }))
  const { request } = await rawGet((await urlOf(app)) + '/stuck', ES)
  await until(() => app.sse.stats().events === 1)
  request.destroy()
  await until(() => app.sse.stats().ends['client-gone'] === 1 || app.sse.stats().open === 0)
  t.match(app.sse.stats(), { open: 0, sources: 1, routes: {} })
  finish()
  await until(() => app.sse.stats().sources === 0, 2000, 'the source to be finalized')
  t.equal(app.sse.stats().ends['client-gone'], 1)
})

t.test('a stream answered by the not-found handler is counted under its method and "(no route)"', async t => {
  const { app } = await buildApp(t)
  app.setNotFoundHandler((_request, reply) => reply.sse(async function * ({ signal }) {
    yield 'nothing here'
    await new Promise(resolve => signal.addEventListener('abort', resolve))
  }))
  const { request } = await rawGet((await urlOf(app)) + '/nowhere?secret=1', ES)
  t.teardown(() => { request.destroy() })
  await until(() => app.sse.stats().open === 1)
  t.strictSame(app.sse.stats().routes, { 'GET (no route)': 1 })
})
