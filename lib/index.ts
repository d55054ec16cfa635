import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { ChannelHub } from './channels/hub.js'
import { multiplex } from './channels/multiplex.js'
import { checkAppChannel } from './resumable/keys.js'
import { ResumableStreams } from './resumable/streams.js'
import { settingsOf, type SsePluginOptions, type SseStreamOptions } from './options.js'
import { readLastEventId } from './last-event-id.js'
import { contextOf, kContext, replySse } from './reply-sse.js'
import { sseRoutes } from './route.js'
import type { SseSource } from './source.js'
import { kStreams, StreamRegistry } from './streams.js'
import { withTimeout } from './timeout.js'
import type { ChannelOptions, SseInstance } from './types.js'

/** Where a request keeps its `lastEventId` once read; null until then (an id is a string or undefined). */
const kLastEventId = Symbol('fastify-sse-stream.last-event-id')
const UNREAD = null
type LastEventIdSlot = { [kLastEventId]: string | undefined | typeof UNREAD }

/** How long `app.close()` waits for sources to finalize after their streams ended. */
const CLOSE_GRACE_MS = 500

const ssePlugin: FastifyPluginAsync<SsePluginOptions> = async function ssePlugin (app, options) {
  const settings = settingsOf(options)
  const streams = new StreamRegistry(settings)
  // The id read, on the request itself (an entry in a WeakMap cost every open stream 4 times as much).
  if (!app.hasRequestDecorator(kLastEventId)) app.decorateRequest(kLastEventId, UNREAD)
  app.decorateRequest('lastEventId', {
    getter (this: FastifyRequest) {
      const slot = this as unknown as LastEventIdSlot
      // Read once per request: a header past the cap is logged once, however often it is read.
      if (slot[kLastEventId] !== UNREAD) return slot[kLastEventId]
      const reading = readLastEventId(this.headers['last-event-id'], settings.maxLastEventIdLength)
      if (reading.tooLong) {
        this.log.warn({ bytes: reading.bytes, maxLastEventIdLength: settings.maxLastEventIdLength },
          'sse Last-Event-ID longer than maxLastEventIdLength: ignored')
      }
      slot[kLastEventId] = reading.id
      return reading.id
    }
  })
  // A second registration in a child context finds the slot already there (null-valued decorators are inherited).
  if (!app.hasReplyDecorator(kContext)) app.decorateReply(kContext, null)
  app.decorateReply('sseContext', {
    getter (this: FastifyReply) {
      return contextOf(this, streams)
    }
  })
  app.decorateReply('sse', function sse (this: FastifyReply, source: SseSource, streamOptions?: SseStreamOptions) {
    return replySse(this, source, streamOptions, settings, streams)
  })
  app.decorateReply('sseResume', function sseResume (this: FastifyReply, key: string) {
    return resumables.resume(this, key)
  })
  const sse: SseInstance = {
    get streams () { return streams.size },
    channel: ((name: string, options?: ChannelOptions) => hub.channel(checkAppChannel(name), options)) as SseInstance['channel'],
    multiplex: names => multiplex(names, name => hub.channel(checkAppChannel(name)), settings.maxLastEventIdLength),
    resumable: (key, source, options) => resumables.start(key, source, options),
    cancel: key => resumables.cancel(key),
    stats: () => ({ ...streams.stats(), ...hub.stats() })
  }
  app.decorate('sse', sse)
  app.decorate(kStreams, streams)

  app.addHook('onRoute', sseRoutes(settings))
  // Fastify's forceCloseConnections 'idle' never closes a busy stream: end them before the server closes.
  app.addHook('preClose', async () => {
    await streams.closeAll(CLOSE_GRACE_MS)
  })
  // Last, once every decorator is in place: a registration that fails on one of them (registered
  // twice) has opened no Redis connection that would keep the process alive.
  const hub = await ChannelHub.create(settings, app.log)
  const resumables = new ResumableStreams(hub, app.log, settings)
  // After the streams (their clients come back, to another instance, and read the end from history),
  // before the channels close: every generation here publishes its end.
  app.addHook('preClose', async () => {
    await withTimeout(resumables.close(), CLOSE_GRACE_MS, () => {})
  })
  // After the streams: end what still subscribes (in-process consumers), release Redis.
  app.addHook('onClose', async () => {
    await hub.close()
  })
}

export default fp(ssePlugin, { fastify: '5.x', name: 'fastify-sse-stream' })
export { ssePlugin }
export * from './errors.js'
export { commentFrame, dataFrame, messageFrame, retryFrame, type Serializer } from './frame.js'
export { isMessage, type SseMessage } from './message.js'
export type { SsePluginOptions, SseStreamOptions } from './options.js'
export type { RefusalReason } from './admission.js'
export type { SseStats } from './stats.js'
export type { StreamTraceContext } from './diagnostics.js'
export type { SseRedisClient } from './channels/redis/client.js'
export type { EndReason } from './pump.js'
export type { SseContext } from './context.js'
export type { SseSource } from './source.js'
export { END_EVENT, GAP_EVENT } from './channels/gap.js'
export { CURSOR_EVENT } from './channels/multiplex.js'
export type { ResumableEnd, ResumableOptions } from './resumable/streams.js'
export type {
  Channel, ChannelMessage, ChannelOptions, DeclaredChannel, DeclaredChannelMessage, GapNotice, PublishOptions, SseInstance,
  SseReplyMethod, SubscribeOptions
} from './types.js'
export {
  sseEvents, type SseControl, type SseDataOf, type SseDeclaredEventsOf, type SseEvent, type SseEventOf,
  type SseEventSchemas, type SseEventSource, type SseEventsOptions, type SseEventsResponse, type SseEventsSchema
} from './events/declare.js'
