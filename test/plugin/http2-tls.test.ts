import t, { type Test } from 'tap'
import { once } from 'node:events'
import type { IncomingMessage } from 'node:http'
import http2 from 'node:http2'
import https from 'node:https'
import type { TLSSocket } from 'node:tls'
import { createParser, type EventSourceMessage } from 'eventsource-parser'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../fixtures/app.js'
import { bodyOf } from '../fixtures/http.js'
import type { LogLine } from '../fixtures/logs.js'
import { httpsUrlOf, selfSignedCertificate, type Certificate } from '../fixtures/tls.js'
import { until } from '../fixtures/wait.js'

// Streams as browsers get them in production: HTTP/2 over TLS (browsers speak HTTP/2 only over TLS,
// chosen by ALPN), many streams multiplexed on one connection, HTTP/1.1 still served to clients that
// do not speak h2 (allowHTTP1).

/** An app serving HTTPS with HTTP/2 (and HTTP/1.1 by ALPN), closed when the test ends. */
async function h2App (t: Test, certificate: Certificate, fastifyOptions: Record<string, unknown> = {}) {
  return await buildApp(t, {}, { http2: true, https: { ...certificate, allowHTTP1: true }, ...fastifyOptions } as never)
}

/** One client session to the app, trusting only the test's own certificate (so the certificate is checked). */
async function connect (t: Test, app: FastifyInstance, certificate: Certificate): Promise<http2.ClientHttp2Session> {
  const session = http2.connect(await httpsUrlOf(app), { ca: certificate.cert })
  session.on('error', () => {})
  t.teardown(() => { session.destroy() })
  await once(session, 'connect')
  return session
}

interface Reading {
  stream: http2.ClientHttp2Stream
  headers: Promise<http2.IncomingHttpHeaders>
  /** Every event parsed so far (eventsource-parser, as clients parse), and the raw text. */
  events: EventSourceMessage[]
  text: () => string
  /** Resolves when the server ended the stream (END_STREAM, not a reset). */
  ended: Promise<void>
}

/** A GET on `session`, read as it arrives. */
function read (session: http2.ClientHttp2Session, path: string): Reading {
  const stream = session.request({ ':path': path, accept: 'text/event-stream' })
  stream.on('error', () => {})
  const events: EventSourceMessage[] = []
  let text = ''
  const parser = createParser({ onEvent: event => { events.push(event) } })
  stream.setEncoding('utf8')
  stream.on('data', (chunk: string) => {
    text += chunk
    parser.feed(chunk)
  })
  return {
    stream,
    headers: new Promise(resolve => stream.once('response', resolve)),
    events,
    text: () => text,
    ended: new Promise(resolve => stream.once('end', resolve))
  }
}

const endedLines = (logs: LogLine[]) => logs.filter(line => line.msg === 'sse stream ended')

t.test('over HTTPS the client negotiates h2 and gets spec-exact frames; an HTTP/1.1 client gets the same bytes', async t => {
  const certificate = await selfSignedCertificate(t)
  if (certificate === null) return
  const { app } = await h2App(t, certificate)
  app.get('/events', (request, reply) => reply.sse([
    { id: 0, event: 'tick', data: 'line 1\nline 2\r\nline 3' },
    { data: '' },
    { retry: 0 },
    { comment: 'two\nlines' },
    { id: 'é', data: { a: 1 } },
    `over ${request.raw.httpVersion}`
  ]))
  const frames = (version: string) => 'id: 0\nevent: tick\ndata: line 1\ndata: line 2\ndata: line 3\n\n' +
    'data: \n\n' + 'retry: 0\n\n' + ': two\n: lines\n\n' + 'id: é\ndata: {"a":1}\n\n' + `data: over ${version}\n\n`

  const session = await connect(t, app, certificate)
  t.equal((session.socket as TLSSocket).alpnProtocol, 'h2', 'ALPN chose HTTP/2')
  const h2 = read(session, '/events')
  const headers = await h2.headers
  await h2.ended
  t.equal(headers[':status'], 200)
  t.equal(headers['content-type'], 'text/event-stream; charset=utf-8')
  t.equal(headers.connection, undefined, 'no connection-specific header on HTTP/2')
  t.equal(h2.text(), frames('2.0'))

  const url = await httpsUrlOf(app)
  const response = await new Promise<IncomingMessage>((resolve, reject) => {
    https.get(`${url}/events`, { ca: certificate.cert, headers: { accept: 'text/event-stream' } }, resolve).on('error', reject)
  })
  const body = await bodyOf(response)
  t.equal(response.httpVersion, '1.1', 'allowHTTP1: a client without h2 is served HTTP/1.1 on the same port')
  t.equal(response.headers['content-type'], 'text/event-stream; charset=utf-8')
  t.equal(body, frames('1.1'))
})

t.test('twenty streams multiplexed on one HTTP/2 session each receive every event of a channel broadcast', async t => {
  const certificate = await selfSignedCertificate(t)
  if (certificate === null) return
  const { app } = await h2App(t, certificate)
  const channel = app.sse.channel('x')
  app.get('/x', (request, reply) => reply.sse(app.sse.channel('x').subscribe({ lastEventId: request.lastEventId })))
  let sessions = 0
  app.server.on('session', () => { sessions++ })

  const session = await connect(t, app, certificate)
  const readings = Array.from({ length: 20 }, () => read(session, '/x'))
  await until(() => channel.size === 20, 5000, 'twenty subscribers')
  t.equal(app.sse.streams, 20)
  const ids: string[] = []
  for (let n = 0; n < 50; n++) ids.push(await channel.publish({ event: 'n', data: n }))
  await until(() => readings.every(reading => reading.events.length === 50), 10_000, 'every stream to receive 50 events')

  const expected = ids.map((id, n) => ({ id, event: 'n', data: String(n) }))
  for (const [index, reading] of readings.entries()) {
    t.same(reading.events.map(({ id, event, data }) => ({ id, event, data })), expected, `stream ${index}: every event, in order`)
  }
  t.equal(sessions, 1, 'all on one connection')
})

t.test('a stream the client resets ends alone: its source is finalized, the other streams and the session go on', async t => {
  const certificate = await selfSignedCertificate(t)
  if (certificate === null) return
  const { app, logs } = await h2App(t, certificate)
  const channel = app.sse.channel('x')
  const finalized: string[] = []
  app.get('/x/:name', (request, reply) => reply.sse(async function * ({ signal }) {
    try {
      yield * channel.subscribe({ signal })
    } finally {
      finalized.push((request.params as { name: string }).name)
    }
  }))

  const session = await connect(t, app, certificate)
  const readings = ['a', 'b', 'c', 'd', 'e'].map(name => read(session, `/x/${name}`))
  await until(() => channel.size === 5, 5000, 'five subscribers')
  await channel.publish('before')
  await until(() => readings.every(reading => reading.events.length === 1), 5000, 'the first event everywhere')

  // RST_STREAM(CANCEL), as a browser sends for an EventSource it closes.
  readings[2]!.stream.close(http2.constants.NGHTTP2_CANCEL)
  await until(() => app.sse.streams === 4, 5000, 'the server to drop the reset stream')
  await until(() => finalized.length === 1, 5000, 'its source to be finalized')
  t.same(finalized, ['c'], "the reset stream's generator, and only it, ran its finally")
  t.equal(channel.size, 4)
  t.same(endedLines(logs).map(line => line.reason), ['client-gone'])

  await channel.publish('after')
  await until(() => [0, 1, 3, 4].every(index => readings[index]!.events.length === 2), 5000, 'the next event on the others')
  t.same(readings.map(reading => reading.events.map(event => event.data)),
    [['before', 'after'], ['before', 'after'], ['before'], ['before', 'after'], ['before', 'after']])
  t.notOk(session.closed || session.destroyed, 'the session is still open')
})

t.test('app.close() ends every stream of the session with a retry, finalizes their sources, and the session closes', async t => {
  const certificate = await selfSignedCertificate(t)
  if (certificate === null) return
  // As the README advises for HTTP/2: otherwise a client that keeps its session holds app.close().
  const { app, logs } = await h2App(t, certificate, { forceCloseConnections: true })
  const channel = app.sse.channel('x')
  let finalized = 0
  app.get('/x', (request, reply) => reply.sse(async function * ({ signal }) {
    try {
      yield * channel.subscribe({ signal })
    } finally {
      finalized++
    }
  }))

  const session = await connect(t, app, certificate)
  const sessionClosed = once(session, 'close')
  const readings = Array.from({ length: 10 }, () => read(session, '/x'))
  await until(() => channel.size === 10, 5000, 'ten subscribers')
  await channel.publish('live')
  await until(() => readings.every(reading => reading.events.length === 1), 5000, 'an event everywhere')

  await app.close()
  await Promise.all(readings.map(reading => reading.ended))
  t.pass('every stream ended cleanly (END_STREAM, no reset)')
  for (const reading of readings) t.match(reading.text(), /\n\nretry: \d+\n\n$/, 'with a retry: frame last')
  t.equal(finalized, 10, 'every source finalized')
  t.equal(app.sse.streams, 0)
  t.same(new Set(endedLines(logs).map(line => line.reason)), new Set(['server-closing']))
  await sessionClosed
  t.ok(session.closed, 'the client session is closed')
})
