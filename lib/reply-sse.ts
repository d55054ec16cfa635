import type { OutgoingHttpHeaders } from 'node:http'
import type { FastifyReply } from 'fastify'
import { acceptsEventStream } from './accept.js'
import type { RefusalReason } from './admission.js'
import { AdoptedFeeder, isAdoptable, type Feeder } from './adoption.js'
import { closeSource } from './close-source.js'
import { negotiateCoding } from './compression.js'
import { StreamContext } from './context.js'
import { describe } from './describe.js'
import { FST_SSE_ALREADY_SENT, FST_SSE_INVALID_HEADER, FST_SSE_INVALID_SOURCE, FST_SSE_NOT_ACCEPTABLE } from './errors.js'
import { invalidHeader, streamHeaders } from './headers.js'
import { Subscription } from './channels/subscription.js'
import { endAtOf, streamSettingsOf, type SseStreamOptions, type StreamSettings } from './options.js'
import { PullDriver } from './pull-driver.js'
import { pumpOf, StreamPump } from './pump.js'
import { refuse } from './refusal.js'
import { routeSettings } from './route.js'
import { describeSource, isSource, openSourceNow, type SseIterator, type SseSource } from './source.js'
import type { StreamRegistry } from './streams.js'

/** Where a reply keeps its stream context (`reply.sseContext`, or the one `reply.sse()` made). */
export const kContext = Symbol('fastify-sse-stream.context')
type ContextSlot = { [kContext]: StreamContext | null }

/**
 * The reply's stream context, made on first use. Read through `reply.sseContext` before `reply.sse()`
 * (a `{ sse: true }` handler that awaits first), no stream exists yet to abort it: the registry
 * watches it until one does, so it aborts when the client leaves (or has left) or the app closes.
 */
export function contextOf (reply: FastifyReply, watcher?: StreamRegistry): StreamContext {
  const slot = reply as unknown as ContextSlot
  let context = slot[kContext]
  if (context === null) {
    context = slot[kContext] = new StreamContext(reply.request)
    watcher?.watch(context, reply.raw)
  }
  return context
}

/** The head without the stream's content coding: a refusal's few bytes go unencoded. */
function plain (headers: OutgoingHttpHeaders): OutgoingHttpHeaders {
  if (headers['content-encoding'] === undefined) return headers
  const { 'content-encoding': _coding, ...rest } = headers
  return rest
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
  const started = pumpOf(reply.raw)
  if (reply.sent || reply.raw.headersSent || started !== undefined) {
    request.log.error({ err: new FST_SSE_ALREADY_SENT() }, 'sse stream not started')
    const closing = closeSource(source, request.log)
    // A second reply.sse() while the first source opens: its caller waits for the first stream, as
    // the first caller does (returned from a handler, it must not let Fastify answer meanwhile).
    return started?.done ?? closing
  }
  let settings: StreamSettings
  let endAt: number | undefined
  try {
    // The route's settings (`{ sse: { ... } }`), then the stream's own options.
    settings = streamSettingsOf(routeSettings(request) ?? defaults, options)
    endAt = endAtOf(options)
  } catch (err) {
    return closeSource(source, request.log).then(() => { reply.send(err) })
  }
  if (!isSource(source)) {
    reply.send(new FST_SSE_INVALID_SOURCE(describeSource(source)))
    return Promise.resolve()
  }
  const accept = request.headers.accept
  if (settings.checkAccept && !acceptsEventStream(accept)) {
    return closeSource(source, request.log).then(() => {
      reply.code(406).send(new FST_SSE_NOT_ACCEPTABLE(describe(accept, 100)))
    })
  }
  const headers = streamHeaders(reply)
  const invalid = invalidHeader(headers, request.raw.httpVersionMajor === 1)
  if (invalid !== undefined) {
    // Fastify would fail on the same header while replying with the error.
    reply.removeHeader(invalid.name)
    return closeSource(source, request.log).then(() => {
      reply.send(new FST_SSE_INVALID_HEADER(invalid.name, invalid.problem))
    })
  }
  if (request.method === 'HEAD' || reply.statusCode === 204 || reply.statusCode === 304) {
    // The stream's head, and no stream (a HEAD request, or a status without a body: Node would drop
    // every write, so nothing would ever hold the source back): the source is never opened.
    if (settings.compress) negotiateCoding(headers, request.headers['accept-encoding'])
    reply.hijack()
    reply.raw.writeHead(reply.statusCode, headers)
    reply.raw.end()
    return closeSource(source, request.log)
  }

  let clientKey: string | undefined
  try {
    clientKey = registry.admission.keyOf(request)
  } catch (err) {
    // The app's clientKey threw: its error is the reply, and what was given is closed.
    return closeSource(source, request.log).then(() => { reply.send(err) })
  }
  const subscribers = source instanceof Subscription ? source.channelSize : 0
  const refusal = registry.admission.refusal(clientKey, registry.size, subscribers)
  if (refusal !== undefined) return refuseStream(refusal, headers, source)

  // After any refusal: its few bytes go unencoded.
  const coding = settings.compress ? negotiateCoding(headers, request.headers['accept-encoding']) : undefined
  const context = contextOf(reply)
  registry.unwatch(context)
  const pump = new StreamPump({ reply, headers, coding, settings, context, owner: registry, endAt })
  registry.add(pump, clientKey)
  // A credential that expired already: the client is told to come back (and authenticate again).
  if (endAt !== undefined && endAt <= Date.now()) pump.end('expired')
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
      start(iterator)
    }, err => {
      const ended = pump.ended
      pump.abandon()
      // After the stream ended, a source function that throws because its signal aborted did its job.
      if (!ended) reply.send(err)
    })
  } else {
    start(opened)
  }
  return pump.done

  /** Stream the opened source, unless it is a subscription to a channel that is full. */
  function start (iterator: SseIterator): void {
    const refusal = iterator instanceof Subscription && !pump.ended
      ? registry.admission.channelRefusal(iterator.channelSize)
      : undefined
    if (refusal === undefined) {
      pump.attach(feederOf(iterator, pump, reply))
      return
    }
    pump.abandon()
    refuseStream(refusal, plain(headers), iterator)
  }

  /** Refused by a limit: the client is told when to come back, the refusal counted and logged once. */
  function refuseStream (reason: RefusalReason, head: OutgoingHttpHeaders, given: SseSource | SseIterator): Promise<void> {
    registry.refused(request, reason, refuse(reply, head, reason, settings))
    return closeSource(given, request.log)
  }
}
