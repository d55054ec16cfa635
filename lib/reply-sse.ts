import type { FastifyBaseLogger, FastifyReply } from 'fastify'
import { acceptsEventStream } from './accept.js'
import { FST_SSE_ALREADY_SENT, FST_SSE_INVALID_SOURCE, FST_SSE_NOT_ACCEPTABLE } from './errors.js'
import { retryFrame } from './frame.js'
import { streamSettingsOf, type SseStreamOptions, type StreamSettings } from './options.js'
import { StreamPump } from './pump.js'
import { describeSource, discardSource, isSource, openSourceNow, StreamContext, type SseIterator, type SseSource } from './source.js'
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
 * A synchronous source takes over the response in the same tick, and the caller gets the pump's own
 * promise: nothing else waits for the length of the stream.
 */
export function replySse (reply: FastifyReply, source: SseSource, options: SseStreamOptions | undefined,
  defaults: StreamSettings, registry: StreamRegistry): Promise<void> {
  const request = reply.request
  if (reply.sent || reply.raw.headersSent) {
    request.log.error({ err: new FST_SSE_ALREADY_SENT() }, 'sse stream not started')
    return drop(source, request.log)
  }
  let settings: StreamSettings
  try {
    settings = streamSettingsOf(defaults, options)
  } catch (err) {
    return drop(source, request.log).then(() => { reply.send(err) })
  }
  if (!isSource(source)) {
    reply.send(new FST_SSE_INVALID_SOURCE(describeSource(source)))
    return Promise.resolve()
  }
  const accept = request.headers.accept
  if (!acceptsEventStream(accept)) {
    return drop(source, request.log).then(() => { reply.code(406).send(new FST_SSE_NOT_ACCEPTABLE(accept)) })
  }

  const context = new StreamContext(request.lastEventId, request)
  const failed = (err: unknown): void => {
    context.abort()
    reply.send(err)
  }
  let opened: SseIterator | Promise<SseIterator>
  try {
    opened = openSourceNow(source, context)
  } catch (err) {
    failed(err)
    return Promise.resolve()
  }
  if (opened instanceof Promise) {
    return opened.then(iterator => {
      if (!reply.sent && !reply.raw.destroyed) return start(reply, iterator, settings, context, registry)
      // The client left, or the handler replied, while an async source function was opening.
      if (reply.sent) request.log.error({ err: new FST_SSE_ALREADY_SENT() }, 'sse stream not started')
      context.abort()
      return drop(iterator, request.log)
    }, failed)
  }
  return start(reply, opened, settings, context, registry)
}

function start (reply: FastifyReply, iterator: SseIterator, settings: StreamSettings, context: StreamContext,
  registry: StreamRegistry): Promise<void> {
  reply.hijack()
  const res = reply.raw
  res.writeHead(reply.statusCode, streamHeaders(reply))
  const firstFrame = settings.retry === undefined ? '' : retryFrame(settings.retry)
  // Without a first frame, send the headers now so the client's `open` fires before any event.
  if (firstFrame === '') res.flushHeaders()
  const pump = new StreamPump(res, iterator, settings, context, reply.request, registry, firstFrame)
  registry.add(pump)
  return pump.done
}
