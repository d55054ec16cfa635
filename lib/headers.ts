import { validateHeaderName, validateHeaderValue, type OutgoingHttpHeaders } from 'node:http'
import type { FastifyReply } from 'fastify'

// The head of a stream: what it sends, and whether Node will write it. Checked before `hijack()`:
// after it, a header Node refuses would leave the client with no answer at all.

/** Connection-specific headers (RFC 9113 §8.2.2): meaningless on HTTP/2, where Node refuses them. */
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade',
  'http2-settings'])

/** Headers HTTP/2 allows once only (Node's list): an array for one fails the whole head. */
const SINGLE_VALUE = new Set(['access-control-allow-credentials', 'access-control-max-age',
  'access-control-request-method', 'age', 'authorization', 'content-encoding', 'content-language', 'content-length',
  'content-location', 'content-md5', 'content-range', 'content-type', 'date', 'dnt', 'etag', 'expires', 'from',
  'host', 'if-match', 'if-modified-since', 'if-none-match', 'if-range', 'if-unmodified-since', 'last-modified',
  'location', 'max-forwards', 'proxy-authorization', 'range', 'referer', 'retry-after', 'tk',
  'upgrade-insecure-requests', 'user-agent', 'x-content-type-options'])

function connectionSpecific (name: string, value: unknown): boolean {
  // `te` is allowed on HTTP/2 with the one value `trailers`.
  return CONNECTION_SPECIFIC.has(name) || (name === 'te' && value !== 'trailers')
}

/** Headers a stream sends unless the reply already set them; content-type is always ours. */
export function streamHeaders (reply: FastifyReply): OutgoingHttpHeaders {
  const http1 = reply.request.raw.httpVersionMajor === 1
  const headers: OutgoingHttpHeaders = {
    'cache-control': 'no-cache',
    // Tells nginx (and proxies that copy it) not to buffer the response.
    'x-accel-buffering': 'no'
  }
  for (const [name, value] of Object.entries(reply.getHeaders())) {
    if (value !== undefined && (http1 || !connectionSpecific(name, value))) headers[name] = value
  }
  delete headers['content-length']
  headers['content-type'] = 'text/event-stream; charset=utf-8'
  return headers
}

/** The first header Node would refuse to write, and why. */
export function invalidHeader (headers: OutgoingHttpHeaders, http1: boolean): { name: string, problem: string } | undefined {
  for (const [name, value] of Object.entries(headers)) {
    if (!http1 && Array.isArray(value) && SINGLE_VALUE.has(name)) {
      return { name, problem: 'HTTP/2 allows this header once only' }
    }
    try {
      validateHeaderName(name)
      for (const one of [value].flat()) validateHeaderValue(name, one as string)
    } catch (err) {
      return { name, problem: (err as Error).message }
    }
  }
  return undefined
}
