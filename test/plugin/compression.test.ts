import t from 'tap'
import { randomBytes } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import http2 from 'node:http2'
import type { Readable } from 'node:stream'
import compressPlugin from '@fastify/compress'
import { EventSource } from 'eventsource'
import Fastify, { type FastifyReply } from 'fastify'
import ssePlugin, { type SseStreamOptions } from '../../lib/index.js'
import { buildApp } from '../fixtures/app.js'
import { readDecoded } from '../fixtures/encoding.js'
import { bufferedSamples, closeApp, rawGet, urlOf } from '../fixtures/http.js'
import { logsOf } from '../fixtures/logs.js'
import { deferred, until } from '../fixtures/wait.js'

// Opt-in compression, over real loopback HTTP, read by clients that decode as browsers do.

/** A GET with that Accept-Encoding (none when undefined), read decoded and parsed as it arrives. */
async function getDecoded (url: string, acceptEncoding?: string): Promise<ReturnType<typeof readDecoded> & {
  headers: IncomingHttpHeaders, leave: () => void
}> {
  const { request, response } = await rawGet(url, acceptEncoding === undefined ? {} : { 'accept-encoding': acceptEncoding })
  return { ...readDecoded(response, response.headers['content-encoding']), headers: response.headers, leave: () => request.destroy() }
}

/**
 * A source of `count` events, each yielded only once the client has the one before: were an event
 * kept in a compression buffer, the next would never come (the wait's failure is kept in `stuck`).
 */
function lockstep (count: number, received: () => number, stuck: string[]): () => AsyncGenerator<unknown> {
  return async function * () {
    for (let i = 0; i < count; i++) {
      yield { id: i, event: 'quote', data: { i, symbol: 'ACME', price: 100 + i / 100 } }
      try {
        await until(() => received() > i, 5000, `event ${i} to reach the client before event ${i + 1} is produced`)
      } catch (err) {
        stuck.push((err as Error).message)
        return
      }
    }
  }
}

const quote = (i: number): string => JSON.stringify({ i, symbol: 'ACME', price: 100 + i / 100 })

for (const coding of ['gzip', 'br']) {
  t.test(`compressed with ${coding}, each event reaches a node:http client before the next is produced`, async t => {
    const { app } = await buildApp(t, { compress: true, retry: 1000 })
    const stuck: string[] = []
    // Events the client has parsed: none until it is connected.
    let received = (): number => 0
    app.get('/quotes', (_request, reply) => reply.sse(lockstep(5, () => received(), stuck)))
    const client = await getDecoded(await urlOf(app) + '/quotes', coding)
    received = () => client.events.length
    const body = await client.body
    t.equal(client.headers['content-encoding'], coding)
    t.equal(client.headers.vary, 'accept-encoding')
    t.same(stuck, [], 'no event waited in a compression buffer')
    t.same(client.events, [0, 1, 2, 3, 4].map(quote))
    t.match(body, /^retry: 1000\n\n/, 'the retry line went through the encoder first')
  })
}

t.test('decoded, a compressed stream is byte for byte the unencoded one; the log counts bytes before compression', async t => {
  const { app, logs } = await buildApp(t, { compress: true, retry: 2500 })
  const values = [
    { id: 1, event: 'quote', data: { symbol: 'ACME', price: 101.25 } },
    'line 1\nline 2\r\nline 3',
    'héllo 👋',
    { data: '' },
    ...Array.from({ length: 200 }, (_, i) => ({ id: i + 2, data: { i, user: { id: 1234, name: 'Ada Lovelace' }, tags: ['a', 'b'] } }))
  ]
  app.get('/events', (_request, reply) => reply.sse(values))
  const base = await urlOf(app)
  const identity = await getDecoded(base + '/events')
  const plain = await identity.body
  t.equal(identity.headers['content-encoding'], undefined)
  for (const coding of ['gzip', 'br']) {
    const wire: Buffer[] = []
    const { request, response } = await rawGet(base + '/events', { 'accept-encoding': coding })
    response.on('data', (chunk: Buffer) => wire.push(chunk))
    const client = readDecoded(response, response.headers['content-encoding'])
    t.equal(await client.body, plain, `${coding}: decoded once, exactly the unencoded stream`)
    const size = Buffer.concat(wire).length
    t.ok(size < Buffer.byteLength(plain) / 3, `${coding}: ${size} bytes on the wire for ${Buffer.byteLength(plain)}`)
    request.destroy()
  }
  await until(() => logsOf(logs, 'sse stream ended').length === 3, 2000, 'three streams to end')
  t.same(logsOf(logs, 'sse stream ended').map(line => line.bytes), [1, 2, 3].map(() => Buffer.byteLength(plain)))
})

t.test('sent unencoded, with vary, to a client that takes no coding the server has', async t => {
  const { app } = await buildApp(t, { compress: true })
  app.get('/events', (_request, reply) => reply.sse(['a', 'b']))
  const base = await urlOf(app)
  for (const acceptEncoding of [undefined, '', 'gzip;q=0', 'deflate', 'identity', 'br;q=0, gzip;q=0, *;q=0']) {
    const client = await getDecoded(base + '/events', acceptEncoding)
    const label = JSON.stringify(acceptEncoding ?? null)
    t.equal(await client.body, 'data: a\n\ndata: b\n\n', label)
    t.equal(client.headers['content-encoding'], undefined, label)
    t.equal(client.headers.vary, 'accept-encoding', label)
  }
  const client = await getDecoded(base + '/events', 'br;q=0, gzip')
  t.equal(client.headers['content-encoding'], 'gzip', 'q=0 refuses br alone')
  t.equal(await client.body, 'data: a\n\ndata: b\n\n')
})

t.test('heartbeats go through the encoder and reach the client while the source is idle', async t => {
  const { app } = await buildApp(t, { compress: true, heartbeat: 20 })
  let heartbeats = (): number => 0
  app.get('/events', (_request, reply) => reply.sse(async function * () {
    yield 'a'
    await until(() => heartbeats() > 0, 5000, 'a heartbeat to reach the client')
    yield 'b'
  }))
  const client = await getDecoded(await urlOf(app) + '/events', 'gzip')
  heartbeats = () => client.comments.length
  t.match(await client.body, /^data: a\n\n(?::\n\n)+data: b\n\n$/)
  t.equal(client.headers['content-encoding'], 'gzip')
})

t.test('a closing server sends its closing retry line through the encoder and finishes the encoded stream', async t => {
  const { app } = await buildApp(t, { compress: true, retry: 1000 })
  app.get('/events', (_request, reply) => reply.sse(async function * ({ signal }) {
    yield 'a'
    await new Promise(resolve => signal.addEventListener('abort', resolve))
  }))
  const client = await getDecoded(await urlOf(app) + '/events', 'br')
  await until(() => client.events.length === 1, 5000, 'the first event')
  await app.close()
  // A br stream cut short does not decode: `body` would reject.
  t.match(await client.body, /^retry: 1000\n\ndata: a\n\nretry: \d+\n\n$/)
})

t.test('compress is set per plugin, overridden per route and per stream', async t => {
  const cases: Array<{ plugin: boolean | undefined, route?: SseStreamOptions, stream?: SseStreamOptions, coding: string | undefined }> = [
    { plugin: undefined, coding: undefined },
    { plugin: true, coding: 'gzip' },
    { plugin: true, route: { compress: false }, coding: undefined },
    { plugin: undefined, route: { compress: true }, coding: 'gzip' },
    { plugin: undefined, stream: { compress: true }, coding: 'gzip' },
    { plugin: true, stream: { compress: false }, coding: undefined }
  ]
  for (const { plugin, route, stream, coding } of cases) {
    const label = JSON.stringify({ plugin, route, stream })
    const { app } = await buildApp(t, plugin === undefined ? {} : { compress: plugin })
    if (stream === undefined) {
      app.get('/events', { sse: route ?? true }, async function * () { yield 'a' })
    } else {
      app.get('/events', (_request, reply) => reply.sse(['a'], stream))
    }
    const client = await getDecoded(await urlOf(app) + '/events', 'gzip, br')
    t.equal(client.headers['content-encoding'], coding, label)
    t.equal(client.headers.vary, coding === undefined ? undefined : 'accept-encoding', label)
    t.equal(await client.body, 'data: a\n\n', label)
  }
})

t.test('a compress that is not a boolean is refused with FST_SSE_INVALID_OPTION', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await t.rejects(async () => { await app.register(ssePlugin, { compress: 'yes' as never }) },
    { code: 'FST_SSE_INVALID_OPTION', message: /compress: use true or false/ })
  const { app: streaming } = await buildApp(t)
  streaming.get('/events', (_request, reply) => reply.sse(['a'], { compress: 1 as never }))
  const response = await streaming.inject({ url: '/events', headers: { 'accept-encoding': 'gzip' } })
  t.equal(response.statusCode, 500)
  t.equal(response.json().code, 'FST_SSE_INVALID_OPTION')
})

t.test('a reply that set content-encoding itself is not encoded again', async t => {
  const { app } = await buildApp(t, { compress: true })
  app.get('/events', (_request, reply) => {
    reply.header('content-encoding', 'identity')
    return reply.sse(['a'])
  })
  const { response } = await rawGet(await urlOf(app) + '/events', { 'accept-encoding': 'gzip' })
  const client = readDecoded(response, undefined)
  t.equal(await client.body, 'data: a\n\n')
  t.equal(response.headers['content-encoding'], 'identity')
  t.equal(response.headers.vary, undefined, 'the header is the business of whoever set content-encoding')
})

for (const order of ['@fastify/compress first', 'fastify-sse-stream first']) {
  t.test(`with @fastify/compress registered globally (${order}), a stream is encoded once or not at all`, async t => {
    const app = Fastify()
    t.teardown(() => app.close())
    const plugins = [async () => { await app.register(compressPlugin, { global: true }) }, async () => { await app.register(ssePlugin) }]
    for (const register of order.startsWith('@') ? plugins : plugins.reverse()) await register()
    const big = { items: Array.from({ length: 100 }, (_, i) => ({ i, name: 'Ada Lovelace' })) }
    app.get('/json', async () => big)
    for (const compress of [true, false]) {
      app.get(`/route-${compress}`, { sse: { compress } }, async function * () { yield big })
      app.get(`/reply-${compress}`, (_request, reply: FastifyReply) => reply.sse([big], { compress }))
    }
    const base = await urlOf(app)
    const json = await getDecoded(base + '/json', 'gzip')
    t.equal(json.headers['content-encoding'], 'gzip', '@fastify/compress encodes the routes it owns')
    t.same(JSON.parse(await json.body), big)
    for (const path of ['/route-true', '/reply-true', '/route-false', '/reply-false']) {
      const client = await getDecoded(base + path, 'gzip')
      t.equal(client.headers['content-encoding'], path.endsWith('true') ? 'gzip' : undefined, `${path}: one coding`)
      // Decoded once: the frames themselves (a second layer would be binary here, or fail to decode).
      t.equal(await client.body, `data: ${JSON.stringify(big)}\n\n`, `${path}: decoded once, the frames`)
    }
  })
}

t.test('over HTTP/2, a compressed stream delivers each event before the next is produced', async t => {
  const warnings: Error[] = []
  const onWarning = (warning: Error): void => { warnings.push(warning) }
  process.on('warning', onWarning)
  t.teardown(() => { process.removeListener('warning', onWarning) })
  const { app } = await buildApp(t, { compress: true, retry: 1000 }, { http2: true } as never)
  const stuck: string[] = []
  let client: ReturnType<typeof readDecoded> | undefined
  app.get('/quotes', (_request, reply) => reply.sse(lockstep(4, () => client?.events.length ?? 0, stuck)))
  const session = http2.connect(await urlOf(app))
  t.teardown(() => { session.close() })
  for (const coding of ['br', 'gzip']) {
    stuck.length = 0
    const stream = session.request({ ':path': '/quotes', accept: 'text/event-stream', 'accept-encoding': coding })
    const headers = await new Promise<http2.IncomingHttpHeaders>(resolve => stream.on('response', resolve))
    client = readDecoded(stream as Readable, headers['content-encoding'])
    t.equal(headers['content-encoding'], coding)
    t.match(await client.body, /^retry: 1000\n\n/)
    t.same(stuck, [], `${coding}: no event waited in a compression buffer`)
    t.same(client.events, [0, 1, 2, 3].map(quote))
  }
  t.same(warnings.map(warning => warning.message), [], 'Node had nothing to warn about')
})

t.test('the eventsource client (fetch decodes gzip) receives each event before the next is produced', async t => {
  const { app } = await buildApp(t, { compress: true })
  const stuck: string[] = []
  const received: string[] = []
  app.get('/quotes', (_request, reply) => reply.sse(lockstep(5, () => received.length, stuck)))
  const codings: Array<string | null> = []
  const source = new EventSource(await urlOf(app) + '/quotes', {
    fetch: async (input, init) => {
      const response = await fetch(input, init)
      codings.push(response.headers.get('content-encoding'))
      return response
    }
  })
  t.teardown(() => { source.close() })
  const all = deferred()
  source.addEventListener('quote', event => {
    received.push(event.data)
    if (received.length === 5) all.resolve()
  })
  await all.promise
  source.close()
  // The aborted fetch leaves undici opening a fresh socket that server.close() would wait for.
  await closeApp(app)
  t.same(codings, ['gzip'], 'fetch asked for gzip and got it')
  t.same(stuck, [])
  t.same(received, [0, 1, 2, 3, 4].map(quote))
})

/**
 * Resolves once `count()` has not moved for 300 ms. The encoder works on the thread pool, so a
 * generator going on waits a few ms between values: a shorter look would take that for a stop.
 */
async function heldStill (count: () => number): Promise<void> {
  let last = -1
  let since = 0
  await until(() => {
    if (count() !== last) {
      last = count()
      since = performance.now()
    }
    return performance.now() - since >= 300
  }, 20_000, 'the generator to be held still')
}

/** Incompressible frames, so that compressed they still fill the socket. */
const FRAME_BYTES = 48 * 1024
const incompressible = (i: number): string => `${i} ${randomBytes(FRAME_BYTES).toString('base64')}`

t.test('a client that stops reading holds the generator still behind the encoder, and leaving finalizes it and frees the encoder', async t => {
  const { app } = await buildApp(t, { compress: true, heartbeat: 20 })
  let pulled = 0
  const finalized = deferred()
  let raw: FastifyReply['raw'] | undefined
  let encoder: (Readable & { _handle?: unknown }) | undefined
  app.get('/events', (_request, reply) => {
    raw = reply.raw
    raw.once('pipe', (source: Readable) => { encoder = source })
    return reply.sse(async function * () {
      try {
        for (;;) { pulled++; yield incompressible(pulled) }
      } finally {
        finalized.resolve()
      }
    })
  })
  const { request } = await rawGet(await urlOf(app) + '/events', { 'accept-encoding': 'gzip' })
  // The response is never read.
  await heldStill(() => pulled)
  const heldAt = pulled
  const buffered = await bufferedSamples(raw)
  t.equal(pulled, heldAt, `held still at ${heldAt} values while the client reads nothing`)
  t.ok(encoder !== undefined, 'the stream went through an encoder')
  t.ok(buffered[0]! >= 0 && buffered[0]! < 4 * FRAME_BYTES, `server-side buffer stays bounded (${buffered[0]} bytes)`)
  t.same(new Set(buffered).size, 1, 'and does not grow: a heartbeat is skipped while the socket is full')
  request.destroy()
  await finalized.promise
  await until(() => encoder!.destroyed, 2000, 'the encoder to be destroyed')
  t.equal(encoder!._handle, null, 'its zlib handle is closed')
})

t.test('when the client reads again, the compressed stream resumes and every value arrives once, in order', async t => {
  const { app } = await buildApp(t, { compress: true })
  const COUNT = 150
  let pulled = 0
  app.get('/events', (_request, reply) => reply.sse(async function * () {
    for (let i = 0; i < COUNT; i++) { pulled++; yield incompressible(i) }
  }))
  const { response } = await rawGet(await urlOf(app) + '/events', { 'accept-encoding': 'br' })
  await heldStill(() => pulled)
  t.ok(pulled < COUNT, `paused at ${pulled} of ${COUNT} values`)
  const body = await readDecoded(response, response.headers['content-encoding']).body
  const seen = [...body.matchAll(/^data: (\d+) /gm)].map(match => Number(match[1]))
  t.same(seen, Array.from({ length: COUNT }, (_, i) => i))
})

t.test('a client that leaves mid-stream finalizes the generator and the encoder is destroyed', async t => {
  const { app } = await buildApp(t, { compress: true })
  const finalized = deferred()
  let encoder: (Readable & { _handle?: unknown }) | undefined
  app.get('/events', (_request, reply) => {
    reply.raw.once('pipe', (source: Readable) => { encoder = source })
    return reply.sse(async function * ({ signal }) {
      try {
        yield 'first'
        await new Promise(resolve => signal.addEventListener('abort', resolve))
      } finally {
        finalized.resolve()
      }
    })
  })
  const client = await getDecoded(await urlOf(app) + '/events', 'br')
  await until(() => client.events.length === 1, 5000, 'the first event')
  client.leave()
  await finalized.promise
  await until(() => encoder!.destroyed, 2000, 'the encoder to be destroyed')
  t.equal(encoder!._handle, null, 'its zlib handle is closed')
})

t.test('a client that stops reading a compressed stream is cut after writeTimeout, even while the encoder still takes input', async t => {
  const { app } = await buildApp(t, { compress: true, writeTimeout: 500, heartbeat: false })
  let raw: FastifyReply['raw'] | undefined
  let finalized = false
  app.get('/feed', (_request, reply) => {
    raw = reply.raw
    return reply.sse(async function * () {
      try {
        // Incompressible until the response is full, then a modest feed the encoder's buffers absorb.
        for (let i = 0; i < 100_000 && raw!.writableNeedDrain !== true; i++) yield randomBytes(1500).toString('base64')
        for (let n = 0; ; n++) {
          await new Promise(resolve => setTimeout(resolve, 20))
          yield { event: 'tick', data: { n } }
        }
      } finally {
        finalized = true
      }
    })
  })
  const { request, response } = await rawGet((await urlOf(app)) + '/feed', { 'accept-encoding': 'gzip' })
  t.teardown(() => { request.destroy() })
  response.pause()
  await until(() => raw?.writableNeedDrain === true, 10_000, 'the response to fill')
  await until(() => finalized, 5000, 'the frozen client to be cut and its source finalized')
  t.ok(raw!.destroyed, 'its connection cut')
  t.equal(app.sse.stats().ends['write-timeout'], 1)
})

t.test('a compressed stream that ends behind a full response is cut after writeTimeout, not left open with its encoder', async t => {
  const { app } = await buildApp(t, { compress: true, writeTimeout: 300, heartbeat: false })
  let raw: FastifyReply['raw'] | undefined
  app.get('/burst', (_request, reply) => {
    raw = reply.raw
    return reply.sse(async function * () {
      for (let i = 0; i < 100_000 && raw!.writableNeedDrain !== true; i++) yield randomBytes(1500).toString('base64')
      yield 'last'
    })
  })
  const { request, response } = await rawGet((await urlOf(app)) + '/burst', { 'accept-encoding': 'gzip' })
  t.teardown(() => { request.destroy() })
  response.pause()
  await until(() => app.sse.stats().ends['source-done'] === 1, 10_000, 'the source to finish')
  await until(() => raw!.destroyed, 5000, 'the connection to be cut')
  t.pass('cut: its last frames could not get through a client that reads nothing')
})

t.test('a refusal found once the source opened (a full channel) is plain on a compressed route', async t => {
  const { app } = await buildApp(t, { compress: true, maxChannelSubscribers: 1 })
  const channel = app.sse.channel('news')
  app.get('/news', (_request, reply) => reply.sse(({ signal }) => channel.subscribe({ signal })))
  const url = (await urlOf(app)) + '/news'
  const holder = await rawGet(url, { 'accept-encoding': 'gzip' })
  t.teardown(() => { holder.request.destroy() })
  await until(() => channel.size === 1)
  const refused = await rawGet(url, { 'accept-encoding': 'gzip' })
  t.equal(refused.response.headers['content-encoding'], undefined)
  let body = ''
  for await (const chunk of refused.response) body += chunk
  t.match(body, /^: refused: channel-subscribers\n\nretry: \d+\n\n$/)
})

t.test('over HTTP/2 too, a client that stops reading a compressed stream is cut after writeTimeout', async t => {
  const { app } = await buildApp(t, { compress: true, writeTimeout: 500, heartbeat: false }, { http2: true } as never)
  let raw: FastifyReply['raw'] | undefined
  let finalized = false
  app.get('/feed', (_request, reply) => {
    raw = reply.raw
    return reply.sse(async function * () {
      try {
        for (let i = 0; i < 100_000 && raw!.writableLength < raw!.writableHighWaterMark; i++) {
          yield randomBytes(1500).toString('base64')
        }
        for (let n = 0; ; n++) {
          await new Promise(resolve => setTimeout(resolve, 20))
          yield { event: 'tick', data: { n } }
        }
      } finally {
        finalized = true
      }
    })
  })
  const session = http2.connect(await urlOf(app))
  t.teardown(() => { session.destroy() })
  const stream = session.request({ ':path': '/feed', accept: 'text/event-stream', 'accept-encoding': 'gzip' })
  stream.pause()
  await until(() => finalized, 10_000, 'the frozen HTTP/2 client to be cut and its source finalized')
  t.equal(app.sse.stats().ends['write-timeout'], 1)
})

t.test('HEAD on a compressed route answers the head a GET would have, content-encoding and vary included', async t => {
  const { app } = await buildApp(t, { compress: true })
  app.get('/events', (_request, reply) => reply.sse(['x']))
  const url = (await urlOf(app)) + '/events'
  const head = await fetch(url, { method: 'HEAD', headers: { accept: 'text/event-stream', 'accept-encoding': 'gzip' } })
  t.equal(head.headers.get('content-encoding'), 'gzip')
  t.equal(head.headers.get('vary'), 'accept-encoding')
})
