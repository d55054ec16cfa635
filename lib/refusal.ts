import type { OutgoingHttpHeaders } from 'node:http'
import type { FastifyReply } from 'fastify'
import type { RefusalReason } from './admission.js'
import { FST_SSE_LIMIT_REACHED } from './errors.js'
import { retryFrame } from './frame.js'
import type { StreamSettings } from './options.js'

const REASONS: Record<RefusalReason, string> = {
  'max-streams': 'this server has as many streams open as it takes (maxStreams)',
  'client-streams': 'this client has as many streams open as it may (maxStreamsPerClient)',
  'channel-subscribers': 'this channel has as many subscribers as it takes (maxChannelSubscribers)',
  'connect-rate': 'this client started streams too often (connectRate)'
}

/** How long a refused client waits: `refusalRetry` plus up to as much again at random, so a crowd spreads out. */
export function refusalWait (refusalRetry: number): number {
  return refusalRetry + Math.floor(Math.random() * refusalRetry)
}

/**
 * Answer a refused stream, before its source is opened. An `EventSource` fails for good on any status
 * but 200 (WHATWG HTML, "fail the connection"), so by default it gets a 200 stream that only says when
 * to come back (`retry:`) and ends: it reconnects by itself then. `refuseWith` 429 or 503 answers an
 * `FST_SSE_LIMIT_REACHED` error instead, for clients that read statuses. Both carry `Retry-After`.
 * Returns the milliseconds the client was told to wait.
 */
export function refuse (reply: FastifyReply, headers: OutgoingHttpHeaders, reason: RefusalReason,
  settings: StreamSettings): number {
  const wait = refusalWait(settings.refusalRetry)
  const retryAfter = Math.ceil(wait / 1000)
  if (settings.refuseWith === 200) {
    reply.hijack()
    reply.raw.writeHead(200, { ...headers, 'retry-after': String(retryAfter) })
    reply.raw.end(`: refused: ${reason}\n\n${retryFrame(wait)}`)
  } else {
    // The error's shape, sent as a payload: through the error handler it would be logged a second
    // time (as an error, for a 503), once per client of a reconnect storm.
    const { code, message } = new FST_SSE_LIMIT_REACHED(REASONS[reason], retryAfter)
    const status = settings.refuseWith
    reply.code(status).header('retry-after', retryAfter)
      .send({ statusCode: status, code, error: status === 429 ? 'Too Many Requests' : 'Service Unavailable', message })
  }
  return wait
}
