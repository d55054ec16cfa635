import type { FastifyReply, FastifyRequest, RouteOptions } from 'fastify'
import type { SseStreamOptions } from './options.js'

function isAsyncIterable (value: unknown): value is AsyncIterable<unknown> {
  return value !== null && typeof value === 'object' &&
    typeof (value as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function'
}

function isThenable (value: unknown): value is PromiseLike<unknown> {
  return value !== null && typeof value === 'object' && typeof (value as PromiseLike<unknown>).then === 'function'
}

/** Where a route's `{ sse: { ... } }` options are kept, in its config: no cost per request to find them. */
const kRouteOptions = Symbol('fastify-sse-stream.route-options')

/** The stream options of the request's route, if it was marked with some. */
export function routeStreamOptions (request: FastifyRequest): SseStreamOptions | undefined {
  return (request.routeOptions.config as { [kRouteOptions]?: SseStreamOptions } | undefined)?.[kRouteOptions]
}

/**
 * `onRoute` hook: on a route marked `{ sse: true }` (or `{ sse: { ...stream options } }`), a handler
 * that returns an async iterable (an `async function*` handler does) is streamed as `reply.sse(it)`
 * would; anything else it returns goes through Fastify as usual. The options apply to every
 * `reply.sse()` of the route, where the stream's own options override them.
 */
export function wrapSseRoute (route: RouteOptions): void {
  const marked = route.sse
  if (marked === undefined || marked === false) return
  if (marked !== true) route.config = { ...route.config, [kRouteOptions]: marked }
  const handler = route.handler
  route.handler = function sseRouteHandler (this: unknown, request: FastifyRequest, reply: FastifyReply) {
    const result: unknown = handler.call(this as never, request, reply)
    const stream = (value: unknown): unknown => isAsyncIterable(value) ? reply.sse(value) : value
    return isThenable(result) ? result.then(stream) : stream(result)
  } as typeof handler
}
