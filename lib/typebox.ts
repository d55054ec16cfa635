import type { Static, TSchema } from 'typebox'
import { sseEvents as declare, type SseEventsOptions, type SseEventsResponse } from './events/declare.js'

// `fastify-sse-stream/typebox`: `sseEvents()` for TypeBox 1.x schemas, whose data types TypeScript can
// only compute with TypeBox's own `Static` (the root export cannot import TypeBox: it is optional).

/** `sseEvents()` with every event's data typed as `Static` of its TypeBox schema. */
export function sseEvents<const Schemas extends Readonly<Record<string, TSchema>>> (events: Schemas,
  options?: SseEventsOptions): SseEventsResponse<{ [K in keyof Schemas]: Static<Schemas[K]> }> {
  return declare(events, options) as SseEventsResponse<any>
}
