import type { FastifyReply, FastifyRequest, RouteOptions } from 'fastify'
import { catalogOfResponse, type EventCatalog } from './events/catalog.js'
import { routeSettingsOf, type StreamSettings } from './options.js'

function isAsyncIterable (value: unknown): value is AsyncIterable<unknown> {
  return value !== null && typeof value === 'object' &&
    typeof (value as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function'
}

function isThenable (value: unknown): value is PromiseLike<unknown> {
  return value !== null && typeof value === 'object' && typeof (value as PromiseLike<unknown>).then === 'function'
}

/** Where a route keeps its stream settings, in its config: checked once, found at no cost per request. */
const kRouteSettings = Symbol('fastify-sse-stream.route-settings')

/** The stream settings of the request's route, if it was marked with options of its own. */
export function routeSettings (request: FastifyRequest): StreamSettings | undefined {
  return (request.routeOptions.config as { [kRouteSettings]?: StreamSettings } | undefined)?.[kRouteSettings]
}

/**
 * The `onRoute` hook: on a route marked `{ sse: true }` (or `{ sse: { ...stream options } }`), a handler
 * that returns an async iterable (an `async function*` handler does) is streamed as `reply.sse(it)`
 * would; anything else it returns goes through Fastify as usual. The options apply to every
 * `reply.sse()` of the route, where the stream's own options override them.
 */
export function sseRoutes (defaults: StreamSettings): (route: RouteOptions) => void {
  return route => { wrapSseRoute(route, defaults) }
}

/** The events a route declared for its 200 stream (`sseEvents()`), compiled as the route is added. */
function declaredEvents (route: RouteOptions): EventCatalog | undefined {
  const responses = route.schema?.response as Record<string, unknown> | undefined
  if (responses === undefined) return undefined
  // The response that declares a stream: 200 may document the JSON answer and 2xx the stream.
  return catalogOfResponse(responses['200']) ?? catalogOfResponse(responses['2xx'])
}

function wrapSseRoute (route: RouteOptions, defaults: StreamSettings): void {
  const marked = route.sse
  const events = declaredEvents(route)
  // Checked as the route is added: a typo fails the route, not each of its requests.
  const own = typeof marked === 'object' ? routeSettingsOf(defaults, marked) : undefined
  if (own !== undefined || events !== undefined) {
    const settings = events === undefined ? own! : Object.freeze({ ...(own ?? defaults), events })
    route.config = { ...route.config, [kRouteSettings]: settings } as typeof route.config
  }
  if (marked === undefined || marked === false) return
  const handler = route.handler
  route.handler = function sseRouteHandler (this: unknown, request: FastifyRequest, reply: FastifyReply) {
    const result: unknown = handler.call(this as never, request, reply)
    const stream = (value: unknown): unknown => isAsyncIterable(value) ? reply.sse(value) : value
    return isThenable(result) ? result.then(stream) : stream(result)
  } as typeof handler
}
