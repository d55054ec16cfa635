import { createRequire } from 'node:module'
import type { ValidateFunction } from 'ajv'
import fastJson from 'fast-json-stringify'
import { describe } from '../describe.js'
import { FST_SSE_INVALID_DATA, FST_SSE_INVALID_EVENTS, FST_SSE_UNDECLARED_EVENT } from '../errors.js'
import { GAP_EVENT } from '../channels/gap.js'
import { frameOf, messageFrame, dataFrame, isPrepared, kJsonOnly, type Serializer } from '../frame.js'
import { isMessage, MESSAGE_FIELDS, type SseMessage } from '../message.js'
import type { ChannelMessage } from '../types.js'

// The run-time side of declared events: per event name, a serializer compiled once from its schema
// (and a validator, when asked for). Read from the OpenAPI `itemSchema` that `sseEvents()` wrote, or
// one written by hand in the same shape.

interface Declared {
  readonly serialize: Serializer
  readonly validate: ValidateFunction | undefined
}

/** Names the plugin's own notices use: never declared by an app. */
const RESERVED = new Set([GAP_EVENT])
const NAME_BREAKER = /[\r\n]/

/** Why `name` cannot be an event name, or undefined when it can. */
export function nameProblem (name: string): string | undefined {
  if (name === '' || NAME_BREAKER.test(name)) return `${describe(name)} is not an event name (non-empty, without CR or LF)`
  if (RESERVED.has(name)) return `${name} is reserved for the plugin's own notices`
  return undefined
}

/** A schema whose data is text (sent as it is, documented as a string); any other data is JSON. */
export function isTextSchema (schema: object): boolean {
  return (schema as { type?: unknown }).type === 'string'
}

// Ajv is CommonJS; loaded once, and only by an app that asks for validation.
const require = createRequire(import.meta.url)
let ajv: import('ajv').default | undefined
function validatorOf (schema: object): ValidateFunction {
  if (ajv === undefined) {
    const Ajv = (require('ajv') as { default: typeof import('ajv').default }).default
    const addFormats = (require('ajv-formats') as { default: (ajv: import('ajv').default) => void }).default
    // OpenAPI's `discriminator` is read (data schemas written for a document use it); unknown formats
    // are ignored, as Fastify's own validator does, without a console line.
    // Nothing is kept by schema or $id: two declarations may share an $id, and a dropped declaration
    // leaves nothing behind in Ajv (its validator lives with its catalog).
    ajv = new Ajv({ strict: false, allErrors: false, discriminator: true, logger: false, addUsedSchema: false })
    addFormats(ajv)
  }
  try {
    return ajv.compile(schema)
  } finally {
    ajv.removeSchema(schema)
  }
}

/** Compiled once per data schema object: two declarations sharing a schema share its serializer. */
const serializers = new WeakMap<object, Serializer>()
const validators = new WeakMap<object, ValidateFunction>()

function serializerOf (name: string, schema: object): Serializer {
  let serialize = serializers.get(schema)
  if (serialize === undefined) {
    let compiled: Serializer
    try {
      compiled = fastJson(schema as Parameters<typeof fastJson>[0])
    } catch (err) {
      throw new FST_SSE_INVALID_EVENTS(`the data schema of ${name} does not compile: ${(err as Error).message}`, { cause: err })
    }
    // Data that is not text is JSON, strings too (`"up"` for a union of literals): as the document says.
    serialize = isTextSchema(schema) ? compiled : Object.assign((value: unknown) => compiled(value), { [kJsonOnly]: true as const })
    serializers.set(schema, serialize)
  }
  return serialize
}

function checkedValidatorOf (name: string, schema: object): ValidateFunction {
  let validate = validators.get(schema)
  if (validate === undefined) {
    try {
      validate = validatorOf(schema)
    } catch (err) {
      throw new FST_SSE_INVALID_EVENTS(`the data schema of ${name} does not compile: ${(err as Error).message}`, { cause: err })
    }
    validators.set(schema, validate)
  }
  return validate
}

/** One branch of an item schema: `{ properties: { event: { const }, data: schema | { contentSchema } } }`. */
function branchEntry (branch: unknown): [string, object] {
  const properties = (branch as { properties?: { event?: { const?: unknown }, data?: Record<string, unknown> } })?.properties
  const name = properties?.event?.const
  const data = properties?.data
  if (typeof name !== 'string' || typeof data !== 'object' || data === null) {
    throw new FST_SSE_INVALID_EVENTS(`an itemSchema branch must name its event (properties.event.const) and data; got ${describe(branch)}`)
  }
  const problem = nameProblem(name)
  if (problem !== undefined) throw new FST_SSE_INVALID_EVENTS(problem)
  const schema = data.contentSchema ?? data
  if (typeof schema !== 'object' || schema === null) {
    throw new FST_SSE_INVALID_EVENTS(`the data schema of ${name} must be a JSON schema object`)
  }
  return [name, schema]
}

/** The declared events of one stream or channel: names, serializers and (opt-in) validators. */
export class EventCatalog {
  readonly #events = new Map<string, Declared>()

  constructor (itemSchema: object, validate: boolean) {
    const branches = (itemSchema as { oneOf?: unknown }).oneOf
    if (!Array.isArray(branches) || branches.length === 0) {
      throw new FST_SSE_INVALID_EVENTS('an itemSchema of declared events has a non-empty oneOf, one branch per event')
    }
    for (const branch of branches) {
      const [name, schema] = branchEntry(branch)
      this.#events.set(name, {
        serialize: serializerOf(name, schema),
        validate: validate ? checkedValidatorOf(name, schema) : undefined
      })
    }
  }

  /**
   * The serializer of a message's event, once its name is declared and its data valid (when checked).
   * A message that dispatches no event (a comment, a `retry:`) needs none: undefined.
   */
  serializerFor (message: SseMessage): Serializer | undefined {
    if (message.data === undefined) {
      if (message.event === undefined) return undefined
      throw new FST_SSE_INVALID_DATA(message.event, 'an event needs data: without it a client dispatches nothing')
    }
    return this.#checked(message.event ?? 'message', message.data).serialize
  }

  /** Whether a channel's event (from this app or another) is one of these, or the plugin's own notice. */
  declares (message: ChannelMessage): boolean {
    const { event } = message
    return (event === undefined && message.data === undefined) || this.#events.has(event ?? 'message') || RESERVED.has(event!)
  }

  /** The frame of a value a declared stream's source yielded. */
  frame (value: unknown, fallback: Serializer): string {
    // Channel events were framed (and checked, by a declared channel) when published.
    if (isPrepared(value)) return frameOf(value, fallback)
    if (isMessage(value)) {
      const serialize = this.serializerFor(value)
      return serialize === undefined ? messageFrame(value, fallback) : messageFrame(value, serialize)
    }
    if (typeof value === 'object' && value !== null && Object.hasOwn(value, 'event')) {
      // Read as data, it would go out as an unnamed event: a message with a key too many, surely.
      const extra = Object.keys(value).filter(key => !MESSAGE_FIELDS.has(key))
      throw new FST_SSE_INVALID_DATA('message', `an object with an event key is not a message: it has ${extra.join(', ')} too`)
    }
    return dataFrame(value, this.#checked('message', value).serialize)
  }

  #checked (name: string, data: unknown): Declared {
    const declared = this.#events.get(name)
    if (declared === undefined) {
      throw new FST_SSE_UNDECLARED_EVENT(describe(name), [...this.#events.keys()].join(', '))
    }
    if (declared.validate !== undefined && data !== undefined && !declared.validate(data)) {
      throw new FST_SSE_INVALID_DATA(name, ajv!.errorsText(declared.validate.errors, { dataVar: 'data' }))
    }
    return declared
  }
}

const catalogs = new WeakMap<object, EventCatalog>()

/** Compile a declaration once (at `sseEvents()`, or when a route or channel first reads it). */
export function compileCatalog (itemSchema: object, validate: boolean): EventCatalog {
  let catalog = catalogs.get(itemSchema)
  if (catalog === undefined) {
    catalog = new EventCatalog(itemSchema, validate)
    catalogs.set(itemSchema, catalog)
  }
  return catalog
}

/** The catalog of a response declared with `sseEvents()` (or written in its shape); undefined if none. */
export function catalogOfResponse (response: unknown): EventCatalog | undefined {
  const media = (response as { content?: Record<string, { itemSchema?: unknown }> } | undefined)?.content?.['text/event-stream']
  const itemSchema = media?.itemSchema as { oneOf?: unknown } | undefined
  // An itemSchema without branches documents a stream without declaring its events: nothing to check.
  if (typeof itemSchema !== 'object' || itemSchema === null || itemSchema.oneOf === undefined) return undefined
  return compileCatalog(itemSchema, false)
}
