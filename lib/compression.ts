import type { OutgoingHttpHeaders } from 'node:http'
import { pipeline } from 'node:stream'
import zlib from 'node:zlib'
import { qualityOf } from './accept.js'

// Opt-in compression of a stream (`compress: true`): which coding the client takes, the head that
// says so, and an encoder in front of the response that flushes every write, so each batch of
// frames reaches the client when it is written instead of waiting in a compression buffer.

/** The codings a stream may be sent in. */
export type ContentCoding = 'gzip' | 'br'

/** A stream's encoder: written to by the pump, piped into the response. */
export type StreamEncoder = zlib.Gzip | zlib.BrotliCompress

const { Z_SYNC_FLUSH, BROTLI_OPERATION_FLUSH, BROTLI_PARAM_QUALITY, BROTLI_PARAM_LGWIN } = zlib.constants

// An encoder lives as long as its connection, and a server holds thousands: memory per stream is the
// cost that counts. An 8 KiB window and memLevel 6 take deflate's state from 256 KiB to 64 KiB; events
// repeat what the last few hundred bytes said, so output grows by at most 5% (`npm run bench:compress`).
// Every write is flushed with Z_SYNC_FLUSH: the pump writes once per batch.
const GZIP_OPTIONS: zlib.ZlibOptions = { flush: Z_SYNC_FLUSH, windowBits: 13, memLevel: 6 }
// Quality 11 (the default) costs 10 to 20 times the CPU of 5 per flush; 4 took as much memory as 5
// for larger output, and 3 and below larger still. A 4 KiB window compressed small JSON events best,
// flushed one by one or in batches, and 2.4 KiB events as well as a 64 KiB window did.
const BROTLI_OPTIONS: zlib.BrotliOptions = {
  flush: BROTLI_OPERATION_FLUSH,
  params: { [BROTLI_PARAM_QUALITY]: 5, [BROTLI_PARAM_LGWIN]: 12 }
}

/** Weights of the codings an Accept-Encoding header names (lowercase; `x-gzip` is gzip, RFC 9110 §8.4.1.3). */
function weightsOf (acceptEncoding: string): Map<string, number> {
  const weights = new Map<string, number>()
  for (const entry of acceptEncoding.split(',')) {
    const [name = '', ...params] = entry.split(';')
    let coding = name.trim().toLowerCase()
    if (coding === '') continue
    if (coding === 'x-gzip') coding = 'gzip'
    // A coding named twice: the more generous weight wins (as for Accept).
    weights.set(coding, Math.max(weights.get(coding) ?? 0, qualityOf(params)))
  }
  return weights
}

/**
 * RFC 9110 §12.5.3: the coding to send a stream in, or undefined to send it as it is. A coding the
 * header does not name takes the weight of `*`; q=0 refuses it. Between gzip and br of equal weight
 * (browsers send both at q=1), gzip: a stream keeps its encoder for as long as it is open, and br's
 * held about 3.4 times the memory of gzip's (`npm run bench:compress`) for as many bytes when events
 * are flushed one by one (16% fewer in bursts). An explicit `identity` weighted above both is honoured.
 * No header, or nothing acceptable: the stream is sent unencoded (a 406 would only make an
 * EventSource retry forever).
 */
export function preferredCoding (acceptEncoding: string | undefined): ContentCoding | undefined {
  if (acceptEncoding === undefined) return undefined
  const weights = weightsOf(acceptEncoding)
  const any = weights.get('*') ?? 0
  const gzip = weights.get('gzip') ?? any
  const br = weights.get('br') ?? any
  const coding: ContentCoding = br > gzip ? 'br' : 'gzip'
  const best = Math.max(gzip, br)
  if (best === 0 || (weights.get('identity') ?? 0) > best) return undefined
  return coding
}

/** `vary` with accept-encoding added (once; `*` already covers it), as one value. */
function varyWithAcceptEncoding (vary: OutgoingHttpHeaders[string]): string {
  const value = vary === undefined ? '' : [vary].flat().join(', ')
  if (value.trim() === '') return 'accept-encoding'
  const names = value.split(',').map(name => name.trim().toLowerCase())
  return names.includes('accept-encoding') || names.includes('*') ? value : `${value}, accept-encoding`
}

/**
 * For a stream with `compress` on: the coding it is sent in (undefined: unencoded), with `headers`
 * amended to say so. A reply that already set content-encoding is encoded by someone else and left
 * as it is; otherwise the response varies on Accept-Encoding whatever the answer, so that a cache
 * never hands one client's coding to another.
 */
export function negotiateCoding (headers: OutgoingHttpHeaders, acceptEncoding: string | undefined):
ContentCoding | undefined {
  if (headers['content-encoding'] !== undefined) return undefined
  headers.vary = varyWithAcceptEncoding(headers.vary)
  const coding = preferredCoding(acceptEncoding)
  if (coding !== undefined) headers['content-encoding'] = coding
  return coding
}

function ignore (): void {}

/**
 * An encoder piped into `res`, whose head was written: what the pump writes goes through it, each
 * write flushed. Its `write()` returning false and its 'drain' reflect the response as well (the
 * pipe stops reading the encoder while the response is full); ending it ends the response. The
 * response closing first (the client left, or was cut) destroys it and frees its zlib state.
 */
export function encoderFor (res: NodeJS.WritableStream, coding: ContentCoding): StreamEncoder {
  const encoder = coding === 'gzip' ? zlib.createGzip(GZIP_OPTIONS) : zlib.createBrotliCompress(BROTLI_OPTIONS)
  // The pipeline's error is the client leaving early; the pump ends the stream on 'close' itself.
  pipeline(encoder, res, ignore)
  return encoder
}
