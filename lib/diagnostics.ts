import { channel, tracingChannel } from 'node:diagnostics_channel'
import type { FastifyRequest } from 'fastify'
import type { EndReason } from './pump.js'

// What the plugin tells `node:diagnostics_channel` subscribers (APMs, metrics). Every publisher asks
// `hasSubscribers` first: with nobody listening, nothing is built, and nothing is ever published per event.

/** A stream's context: what is known at its start, and at its end (asyncEnd) what happened. */
export interface StreamTraceContext {
  readonly request: FastifyRequest
  /** `${method} ${route pattern}`: never the URL, which may carry secrets. */
  readonly route: string
  readonly startedAt: number
  /** How it ended; absent when it never started (its source failed to open and Fastify replied the error). */
  reason?: EndReason
  events?: number
  bytes?: number
  durationMs?: number
}

/** `tracing:fastify-sse-stream.stream:start` when a stream is accepted, `:asyncEnd` once it is over. */
export const streamTrace = tracingChannel<unknown, StreamTraceContext>('fastify-sse-stream.stream')
/** `{ request, route, reason }` for every stream refused by a limit. */
export const refusalChannel = channel('fastify-sse-stream.refusal')
/** `{ channel, lastEventId }` for every subscription that replays from a Last-Event-ID. */
export const replayChannel = channel('fastify-sse-stream.replay')
/** `{ channel }` for every notice of lost events handed to a subscriber. */
export const gapChannel = channel('fastify-sse-stream.gap')

/** The route of a request as stats and traces name it. */
export function routeOf (request: FastifyRequest): string {
  return `${request.method} ${request.routeOptions.url ?? '(no route)'}`
}
