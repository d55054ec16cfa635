import type { FastifyBaseLogger, FastifyReply } from 'fastify'
import { acceptsEventStream } from './accept.js'
import { FST_SSE_ALREADY_SENT, FST_SSE_INVALID_SOURCE, FST_SSE_NOT_ACCEPTABLE } from './errors.js'
import { retryFrame } from './frame.js'
import { streamSettingsOf, type SseStreamOptions, type StreamSettings } from './options.js'
import { StreamPump } from './pump.js'
import { describeSource, discardSource, isSource, openSource, StreamContext, type SseIterator, type SseSource } from './source.js'
import type { StreamRegistry } from './streams.js'

/** Headers a stream sends unless the reply already set them; content-type is always ours. */
function streamHeaders (reply: FastifyReply): Record<string, string | number | string[]> {
  const headers: Record<string, string | number | string[]> = {
    'cache-control': 'no-cache',
    // Tells nginx (and proxies that copy it) not to buffer the response.
    'x-accel-buffering': 'no'
  }
  // HTTP/2 forbids connection-specific headers; Node warns and drops them.
  if (reply.request.raw.httpVersionMajor === 1) headers.connection = 'keep-alive'
  for (const [name, value] of Object.entries(reply.getHeaders())) {
    if (value !== undefined) headers[name] = value
  }
  delete headers['content-length']
  headers['content-type'] = 'text/event-stream; charset=utf-8'
  if (reply.request.raw.httpVersionMajor !== 1) delete headers.connection
  return headers
}

/** Close a source that will not be streamed; a `finally` that throws is logged, never rethrown. */
async function drop (source: unknown, log: FastifyBaseLogger): Promise<void> {
  try {
    await discardSource(source)
  } catch (err) {
    log.warn({ err }, 'sse source threw while being closed')
  }
}

/**
 * `reply.sse(source, options)`: negotiate, open the source, write the headers, hand over to a pump.
 * Resolves when the stream is over and never rejects: failures before the headers go out are
 * replied through Fastify's error handler, failures after are logged with the stream's end.
 */
export async function replySse (reply: FastifyReply, source: SseSource, options: SseStreamOptions | undefined,
  defaults: StreamSettings, registry: StreamRegistry): Promise<void> {
  const request = reply.request
  if (reply.sent || reply.raw.headersSent) {
    request.log.error({ err: new FST_SSE_ALREADY_SENT() }, 'sse stream not started')
    await drop(source, request.log)
    return
  }
  let settings: StreamSettings
  try {
    settings = streamSettingsOf(defaults, options)
  } catch (err) {
    await drop(source, request.log)
    reply.send(err)
    return
  }
  if (!isSource(source)) {
    reply.send(new FST_SSE_INVALID_SOURCE(describeSource(source)))
    return
  }
  const accept = request.headers.accept
  if (!acceptsEventStream(accept)) {
    await drop(source, request.log)
    reply.code(406).send(new FST_SSE_NOT_ACCEPTABLE(accept))
    return
  }

  const context = new StreamContext(request.lastEventId, request)
  let iterator: SseIterator
  try {
    iterator = await openSource(source, context)
  } catch (err) {
    context.abort()
    reply.send(err)
    return
  }
  if (reply.sent || reply.raw.destroyed) {
    // The client left, or the handler replied, while an async source function was opening.
    if (reply.sent) request.log.error({ err: new FST_SSE_ALREADY_SENT() }, 'sse stream not started')
    context.abort()
    await drop(iterator, request.log)
    return
  }

  reply.hijack()
  const res = reply.raw
  res.writeHead(reply.statusCode, streamHeaders(reply))
  const firstFrame = settings.retry === undefined ? '' : retryFrame(settings.retry)
  // Without a first frame, send the headers now so the client's `open` fires before any event.
  if (firstFrame === '') res.flushHeaders()
  const pump = new StreamPump(res, iterator, settings, context, request, registry, firstFrame)
  registry.add(pump)
  return pump.done
}
