import { describe } from '../describe.js'
import { FST_SSE_INVALID_EVENTS } from '../errors.js'
import { MESSAGE_FIELDS } from '../message.js'
import { compileCatalog, isTextSchema, nameProblem } from './catalog.js'

// `sseEvents()`: a route's (or a channel's) events, declared once as JSON schemas, in the shape Fastify
// and @fastify/swagger read: a 200 response of `text/event-stream` whose OpenAPI 3.2 `itemSchema` says
// what each event is. The plugin reads its serializers from that same `itemSchema`, so the document and
// the wire cannot disagree.

/** Event name → JSON schema of its `data` (a TypeBox type is one). `message` is the unnamed event. */
export type SseEventSchemas = Readonly<Record<string, object>>

export interface SseEventsOptions {
  /**
   * Check every event's data against its schema before it is sent or published (Ajv, compiled once):
   * invalid data is an `FST_SSE_INVALID_DATA` error instead of an event. Costs a validation per event.
   * Without it, undeclared event names are still refused; data is serialized by its schema.
   * @default false
   */
  validate?: boolean
  /** The response's description in the API document. @default 'A stream of server-sent events' */
  description?: string
}

/** The data type a schema stands for, where the schema's type says it (TypeBox 0.34, `Type.Unsafe`). */
export type SseDataOf<Schema> =
  Schema extends { readonly '~unsafe': infer T } ? T : Schema extends { readonly static: infer T } ? T : unknown

type SseFields = { id?: string | number, retry?: number, comment?: string }

/**
 * What a source may yield, or a channel publish, for the event `Name` with data `Data`: a message
 * naming it, or, for `message` (the unnamed event), the data alone or a message without a name.
 */
export type SseEvent<Name extends string, Data> =
  | (SseFields & { event: Name, data: Data })
  | (Name extends 'message' ? Data | (SseFields & { event?: undefined, data: Data }) : never)

/** A message that dispatches no event: a comment, a `retry:`, or both. */
export type SseControl = SseFields & { event?: undefined, data?: undefined } & ({ comment: string } | { retry: number })

/** Every value a stream of these events may carry. `Events`: event name → data type. */
export type SseEventOf<Events> = { [K in keyof Events & string]: SseEvent<K, Events[K]> }[keyof Events & string] | SseControl

/**
 * What a declared stream's source yields: checked by TypeScript against the declaration. The optional
 * `~sseEvents` (types only) lets `reply.sse()` find the declaration in the route's reply type.
 */
export type SseEventSource<Events> =
  | (AsyncIterable<SseEventOf<Events>> & { readonly '~sseEvents'?: Events })
  | (Iterable<SseEventOf<Events>> & { readonly '~sseEvents'?: Events })

/** The declared events of a reply type (a union: of its declared members); never when there are none. */
export type SseDeclaredEventsOf<Reply> =
  Reply extends { readonly '~sseEvents'?: infer Events } ? unknown extends Events ? never : Events : never

/**
 * The stream as JSON Schema sees it (an array of events), typed for Fastify's type providers: TypeBox
 * reads `~unsafe` (as for `Type.Unsafe`), so a `{ sse: true }` handler returns a declared source.
 */
export interface SseEventsSchema<Events> {
  readonly type: 'array'
  readonly items: Record<string, unknown>
  /** Types only: no such property exists at run time. */
  readonly '~unsafe': SseEventSource<Events>
}

/** A 200 response of declared events, for a route's `schema.response` and for `channel(name, { events })`. */
export interface SseEventsResponse<Events = Record<string, unknown>> {
  /** Types only. */
  readonly '~sseEvents'?: Events
  readonly description: string
  readonly content: {
    readonly 'text/event-stream': {
      readonly schema: SseEventsSchema<Events>
      /** OpenAPI 3.2: what each event of the stream is. */
      readonly itemSchema: Record<string, unknown>
    }
  }
}

/** How an event's data appears in the document: text as it is, anything else as JSON. */
function dataSchemaOf (schema: object): Record<string, unknown> {
  if (isTextSchema(schema)) return schema as Record<string, unknown>
  return { contentMediaType: 'application/json', contentSchema: schema }
}

/** One branch of the item schema: the event's name (absent or `message` for the unnamed one) and its data. */
function branchOf (name: string, schema: object): Record<string, unknown> {
  const branch: Record<string, unknown> = { properties: { event: { const: name }, data: dataSchemaOf(schema) } }
  if (name !== 'message') branch.required = ['event']
  return branch
}

function checkDeclaration (events: unknown): asserts events is SseEventSchemas {
  if (typeof events !== 'object' || events === null || Array.isArray(events)) {
    throw new FST_SSE_INVALID_EVENTS(`pass an object of event name to data schema; got ${describe(events)}`)
  }
  const names = Object.keys(events)
  if (names.length === 0) throw new FST_SSE_INVALID_EVENTS('declare at least one event')
  for (const name of names) {
    const problem = nameProblem(name)
    if (problem !== undefined) throw new FST_SSE_INVALID_EVENTS(problem)
    const schema = (events as Record<string, unknown>)[name]
    if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) {
      throw new FST_SSE_INVALID_EVENTS(`the data schema of ${name} must be a JSON schema object; got ${describe(schema)}`)
    }
    if (name === 'message' && readsAsMessage(schema)) {
      throw new FST_SSE_INVALID_EVENTS('the data of message would be read as a message (its properties are all message fields): give it another name')
    }
  }
}

/** A JSON copy of a data schema; one that is not JSON (it holds a function) is refused. */
function copyOf (name: string, schema: object): object {
  try {
    return structuredClone(schema)
  } catch (err) {
    throw new FST_SSE_INVALID_EVENTS(`the data schema of ${name} must be JSON: ${(err as Error).message}`, { cause: err })
  }
}

/** An object schema whose every property is a message field: its values would be yielded as messages. */
function readsAsMessage (schema: object): boolean {
  const properties = (schema as { properties?: unknown }).properties
  if (typeof properties !== 'object' || properties === null) return false
  const keys = Object.keys(properties)
  return keys.length > 0 && keys.every(key => MESSAGE_FIELDS.has(key))
}

/**
 * Declare a stream's events: event name to the JSON schema of its data (`message` for unnamed events).
 * Put the result in a route's `schema.response[200]`, or pass it to `app.sse.channel(name, { events })`.
 * Each data schema is compiled once (fast-json-stringify) here, not per stream nor per event.
 */
export function sseEvents<const Schemas extends SseEventSchemas> (events: Schemas, options: SseEventsOptions = {}):
SseEventsResponse<{ [K in keyof Schemas]: SseDataOf<Schemas[K]> }> {
  checkDeclaration(events)
  const { validate = false, description = 'A stream of server-sent events' } = options
  const itemSchema = {
    type: 'object',
    properties: {
      event: { type: 'string' },
      data: { type: 'string' },
      id: { type: 'string' },
      retry: { type: 'integer', minimum: 0 }
    },
    required: ['data'],
    // Compiled and documented from a copy: a schema changed afterwards changes neither the wire nor the document.
    oneOf: Object.entries(events).map(([name, schema]) => branchOf(name, copyOf(name, schema)))
  }
  compileCatalog(itemSchema, validate)
  // `~unsafe` is a type of the schema, never a value: the schema itself is plain JSON.
  const schema = { type: 'array', items: itemSchema }
  return { description, content: { 'text/event-stream': { schema, itemSchema } } } as unknown as
    SseEventsResponse<{ [K in keyof Schemas]: SseDataOf<Schemas[K]> }>
}
