import t from 'tap'
import type { OutgoingHttpHeaders } from 'node:http'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { PassThrough, Writable } from 'node:stream'
import { encoderFor, negotiateCoding, preferredCoding, type ContentCoding } from '../../lib/compression.js'
import { decoderFor } from '../fixtures/encoding.js'
import { until } from '../fixtures/wait.js'

t.test('the coding of a stream follows Accept-Encoding: weights, q=0, *, identity, gzip on a tie', async t => {
  const table: Array<[string | undefined, ContentCoding | undefined]> = [
    [undefined, undefined],
    ['', undefined],
    ['gzip', 'gzip'],
    ['br', 'br'],
    ['GZip', 'gzip'],
    ['x-gzip', 'gzip'],
    ['deflate', undefined],
    ['zstd, deflate', undefined],
    ['identity', undefined],
    // What browsers send: every coding at q=1. gzip holds half the memory per open stream.
    ['gzip, deflate, br, zstd', 'gzip'],
    ['br, gzip', 'gzip'],
    ['br;q=1, gzip;q=0.8', 'br'],
    ['gzip;q=0.5, br;q=0.9', 'br'],
    ['gzip;q=0.9, br;q=0.5', 'gzip'],
    ['gzip;q=0', undefined],
    ['gzip;q=0.000', undefined],
    ['br;q=0, gzip;q=0', undefined],
    ['br, gzip;q=0', 'br'],
    ['gzip;q=0.001', 'gzip'],
    ['*', 'gzip'],
    ['*;q=0', undefined],
    ['*;q=0, br', 'br'],
    ['br;q=0, *', 'gzip'],
    ['*;q=0.5, br', 'br'],
    ['gzip;q=0.5, identity', undefined],
    ['gzip, identity;q=0.5', 'gzip'],
    ['gzip, identity;q=0', 'gzip'],
    ['gzip;q=0.5, identity;q=0.5', 'gzip'],
    // A malformed weight is ignored, as for Accept: the coding counts as unweighted.
    ['gzip;q=abc', 'gzip'],
    ['gzip;q=-0', 'gzip'],
    ['br;q=0.5, br;q=1, gzip;q=0.9', 'br'],
    ['  gzip ; q=0.7 ,  br ; Q=0.6 ', 'gzip'],
    [',, ,gzip', 'gzip']
  ]
  for (const [acceptEncoding, coding] of table) {
    t.equal(preferredCoding(acceptEncoding), coding, JSON.stringify(acceptEncoding ?? null))
  }
})

t.test('the head says which coding, and varies on Accept-Encoding whatever the answer', async t => {
  const headers: OutgoingHttpHeaders = { 'content-type': 'text/event-stream; charset=utf-8' }
  t.equal(negotiateCoding(headers, 'br'), 'br')
  t.same(headers, { 'content-type': 'text/event-stream; charset=utf-8', 'content-encoding': 'br', vary: 'accept-encoding' })

  const refused: OutgoingHttpHeaders = {}
  t.equal(negotiateCoding(refused, 'gzip;q=0'), undefined)
  t.same(refused, { vary: 'accept-encoding' }, 'unencoded, and says it could have been otherwise')
})

t.test('accept-encoding joins a vary the reply set, once', async t => {
  const cases: Array<[OutgoingHttpHeaders[string], string]> = [
    ['origin', 'origin, accept-encoding'],
    [['origin', 'cookie'], 'origin, cookie, accept-encoding'],
    ['Origin, Accept-Encoding', 'Origin, Accept-Encoding'],
    ['*', '*'],
    ['', 'accept-encoding'],
    [' ', 'accept-encoding']
  ]
  for (const [vary, expected] of cases) {
    // Node writes an array as repeated headers; the reply may have set either.
    const headers: OutgoingHttpHeaders = { vary: vary as string }
    negotiateCoding(headers, 'gzip')
    t.equal(headers.vary, expected, JSON.stringify(vary))
  }
})

t.test('a reply that set content-encoding is encoded by someone else: left as it is', async t => {
  const headers: OutgoingHttpHeaders = { 'content-encoding': 'gzip', vary: 'origin' }
  t.equal(negotiateCoding(headers, 'gzip, br'), undefined)
  t.same(headers, { 'content-encoding': 'gzip', vary: 'origin' })
})

/** An encoder into a PassThrough, and the text a client decodes from it so far. */
function encoded (coding: ContentCoding): { encoder: ReturnType<typeof encoderFor>, sink: PassThrough, text: () => string } {
  const sink = new PassThrough()
  const encoder = encoderFor(sink, coding)
  const decoder = decoderFor(coding)
  let text = ''
  sink.pipe(decoder).setEncoding('utf8').on('data', (chunk: string) => { text += chunk })
  return { encoder, sink, text: () => text }
}

for (const coding of ['gzip', 'br'] as const) {
  t.test(`${coding}: every write reaches the client whole, before the next write and before the end`, async t => {
    const { encoder, sink, text } = encoded(coding)
    const frames = ['retry: 1000\n\n', 'id: 1\ndata: {"price":100.5}\n\n', 'data: héllo 👋\n\n', ':\n\n']
    let expected = ''
    for (const frame of frames) {
      encoder.write(frame)
      expected += frame
      await until(() => text() === expected, 2000, `${JSON.stringify(frame)} to be decodable on its own`)
    }
    encoder.write(Buffer.from('data: bytes\n\n'))
    encoder.end()
    await once(sink, 'finish')
    await until(() => text() === expected + 'data: bytes\n\n', 2000, 'the last frame')
    t.pass('each frame decoded as soon as it was written; ending finished the encoded stream')
  })

  t.test(`${coding}: while the response takes nothing, write() says false and 'drain' stops coming; it comes once the response has room`, async t => {
    const held: Array<() => void> = []
    // A response whose socket takes nothing until released.
    const res = new Writable({ highWaterMark: 1024, write (_chunk, _encoding, callback) { held.push(callback) } })
    const encoder = encoderFor(res, coding)
    // Incompressible: a frame stays about as large as it was (8 KiB).
    const frame = (): string => `data: ${randomBytes(6 * 1024).toString('base64')}\n\n`
    const drain = (ms: number): Promise<boolean> => new Promise(resolve => {
      const timer = setTimeout(() => { encoder.removeListener('drain', onDrain); resolve(false) }, ms)
      const onDrain = (): void => { clearTimeout(timer); resolve(true) }
      encoder.once('drain', onDrain)
    })
    let accepted = 0
    // Write as the pump does: on false, wait for 'drain'. The encoder works on the thread pool, so a
    // few drains come while its own buffers fill; then none.
    while (accepted < 4 * 1024 * 1024) {
      const next = frame()
      accepted += next.length
      if (!encoder.write(next) && !await drain(200)) break
    }
    t.ok(accepted < 256 * 1024, `held after ${Math.round(accepted / 1024)} KiB written into a response that takes nothing`)
    const drained = drain(5000)
    // The response takes everything from now on.
    const releasing = setInterval(() => { for (const callback of held.splice(0)) callback() }, 1)
    t.teardown(() => { clearInterval(releasing) })
    t.ok(await drained, 'drained once the response had room')
    encoder.destroy()
  })

  t.test(`${coding}: the response closing first destroys the encoder and closes its zlib handle`, async t => {
    const { encoder, sink } = encoded(coding)
    encoder.write('data: a\n\n')
    await once(sink, 'data')
    sink.destroy()
    // (It is destroyed with the pipeline's premature-close error, which `once` would throw.)
    await new Promise(resolve => encoder.once('close', resolve))
    t.ok(encoder.destroyed, 'encoder destroyed')
    // What frees zlib's native memory (about 100 to 350 KiB a stream) without waiting for a GC.
    t.equal((encoder as unknown as { _handle: unknown })._handle, null, 'zlib handle closed')
  })
}
