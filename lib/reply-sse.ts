import { validateHeaderName, validateHeaderValue, type OutgoingHttpHeaders } from 'node:http'
import type { FastifyReply } from 'fastify'
import { acceptsEventStream } from './accept.js'
import { AdoptedFeeder, isAdoptable, type Feeder } from './adoption.js'
import { closeSource } from './close-source.js'
import { StreamContext } from './context.js'
import { describe } from './describe.js'
import { FST_SSE_ALREADY_SENT, FST_SSE_INVALID_HEADER, FST_SSE_INVALID_SOURCE, FST_SSE_NOT_ACCEPTABLE } from './errors.js'
import { streamSettingsOf, type SseStreamOptions, type StreamSettings } from './options.js'
import { PullDriver } from './pull-driver.js'
import { StreamPump } from './pump.js'
import { describeSource, isSource, openSourceNow, type SseIterator, type SseSource } from './source.js'
import type { StreamRegistry } from './streams.js'

/** Where a reply keeps its stream context (`reply.sseContext`, or the one `reply.sse()` made). */
export const kContext = Symbol('fastify-sse-stream.context')
type ContextSlot = { [kContext]: StreamContext | null }

/** Connection-specific headers: meaningless on HTTP/2, where Node refuses them. */
const HTTP1_ONLY = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade'])

/**
 * The reply's stream context, made on first use. One read before `reply.sse()` (a `{ sse: true }`
 * handler that awaits first) must abort when the client leaves even though no stream exists yet.
 */
export function contextOf (reply: FastifyReply, watch: boolean): StreamContext {
  const slot = reply as unknown as ContextSlot
  let context = slot[kContext]
  if (context === null) {
    context = slot[kContext] = new StreamContext(reply.request)
    if (watch) {
      const ctx = context
      reply.raw.once('close', () => { ctx.abort() })
    }
  }
  return context
}

/** Headers a stream sends unless the reply already set them; content-type is always ours. */
function streamHeaders (reply: FastifyReply): OutgoingHttpHeaders {
  const http1 = reply.request.raw.httpVersionMajor === 1
  const headers: OutgoingHttpHeaders = {
    'cache-control': 'no-cache',
    // Tells nginx (and proxies that copy it) not to buffer the response.
    'x-accel-buffering': 'no'
  }
  for (const [name, value] of Object.entries(reply.getHeaders())) {
    if (value !== undefined && (http1 || !HTTP1_ONLY.has(name))) headers[name] = value
  }
  delete headers['content-length']
  headers['content-type'] = 'text/event-stream; charset=utf-8'
  return headers
}

/** The first header Node would refuse to write (after `hijack()` that would leave the client hanging). */
function invalidHeader (headers: OutgoingHttpHeaders): { name: string, problem: string } | undefined {
  for (const [name, value] of Object.entries(headers)) {
    try {
      validateHeaderName(name)
      for (const one of [value].flat()) validateHeaderValue(name, one as string)
    } catch (err) {
      return { name, problem: (err as Error).message }
    }
  }
  return undefined
}

function feederOf (iterator: SseIterator, pump: StreamPump, reply: FastifyReply): Feeder {
  const log = reply.request.log
  return isAdoptable(iterator) ? new AdoptedFeeder(iterator, pump, log) : new PullDriver(iterator, pump, log)
}

/**
 * `reply.sse(source, options)`: negotiate, check the headers, start a pump, open the source and hand
 * it over. Resolves when the stream is over and never rejects: failures before the headers go out are
 * replied through Fastify's error handler, failures after are logged with the stream's end.
 * A synchronous source takes over the response in the same tick, and the caller gets the pump's own
 * promise: nothing else waits for the length of the stream.
 */
export function replySse (reply: FastifyReply, source: SseSource, options: SseStreamOptions | undefined,
  defaults: StreamSettings, registry: StreamRegistry): Promise<void> {
  const request = reply.request
  if (reply.sent || reply.raw.headersSent) {
    request.log.error({ err: new FST_SSE_ALREADY_SENT() }, 'sse stream not started')
    return closeSource(source, request.log)
  }
  let settings: StreamSettings
  try {
    settings = streamSettingsOf(defaults, options)
  } catch (err) {
    return closeSource(source, request.log).then(() => { reply.send(err) })
  }
  if (!isSource(source)) {
    reply.send(new FST_SSE_INVALID_SOURCE(describeSource(source)))
    return Promise.resolve()
  }
  const accept = request.headers.accept
  if (!acceptsEventStream(accept)) {
    return closeSource(source, request.log).then(() => {
      reply.code(406).send(new FST_SSE_NOT_ACCEPTABLE(describe(accept, 100)))
    })
  }
  const headers = streamHeaders(reply)
  const invalid = invalidHeader(headers)
  if (invalid !== undefined) {
    // Fastify would fail on the same header while replying with the error.
    reply.removeHeader(invalid.name)
    return closeSource(source, request.log).then(() => {
      reply.send(new FST_SSE_INVALID_HEADER(invalid.name, invalid.problem))
    })
  }
  if (request.method === 'HEAD') {
    // The stream's head, and no stream: the source is never opened.
    reply.hijack()
    reply.raw.writeHead(reply.statusCode, headers)
    reply.raw.end()
    return closeSource(source, request.log)
  }

  const context = contextOf(reply, false)
  const pump = new StreamPump({ reply, headers, settings, context, owner: registry })
  registry.add(pump)
  if (pump.ended) {
    // Gone already, or the server is closing: the source is not opened (a function is never called).
    pump.release(closeSource(source, request.log))
    return pump.done
  }
  let opened: SseIterator | Promise<SseIterator>
  try {
    opened = openSourceNow(source, context)
  } catch (err) {
    pump.abandon()
    reply.send(err)
    return Promise.resolve()
  }
  if (opened instanceof Promise) {
    opened.then(iterator => {
      if (reply.raw.headersSent && !pump.started) {
        // The handler replied on its own while the source opened.
        request.log.error({ err: new FST_SSE_ALREADY_SENT() }, 'sse stream not started')
        pump.abandon()
        return closeSource(iterator, request.log)
      }
      pump.attach(feederOf(iterator, pump, reply))
    }, err => {
      const ended = pump.ended
      pump.abandon()
      // After the stream ended, a source function that throws because its signal aborted did its job.
      if (!ended) reply.send(err)
    })
  } else {
    pump.attach(feederOf(opened, pump, reply))
  }
  return pump.done
}
