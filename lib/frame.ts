import {
  FST_SSE_INVALID_COMMENT,
  FST_SSE_INVALID_EVENT,
  FST_SSE_INVALID_ID,
  FST_SSE_INVALID_RETRY,
  FST_SSE_SERIALIZE
} from './errors.js'
import { describe } from './describe.js'
import { isMessage, type SseMessage } from './message.js'

// Pure: values in, event-stream text out (WHATWG HTML, "Server-sent events", event stream interpretation).
// No I/O and no Fastify here, so every byte the plugin can write is testable in isolation.

export type Serializer = (value: unknown) => string

/**
 * Marks a serializer that writes every value as JSON, strings included (a declared event whose schema
 * is not text): its strings are serialized like anything else instead of sent as they are.
 */
export const kJsonOnly = Symbol('fastify-sse-stream.json-only')

/** What a comment-only heartbeat looks like on the wire. */
export const HEARTBEAT_FRAME = ':\n\n'

const LINE_BREAK = /\r\n|\r|\n/
const HAS_LINE_BREAK = /[\r\n]/
const HAS_ID_BREAKER = /[\r\n\0]/

/** Symbol under which a prepared message carries its already-built frame. */
const kFrame = Symbol('fastify-sse-stream.frame')
/** ...and the same frame as UTF-8 bytes, encoded once rather than once per socket that writes it. */
const kBytes = Symbol('fastify-sse-stream.bytes')

/** A message whose frame was built once, to be written as-is to any number of streams. */
export type PreparedMessage<T = unknown> = Readonly<SseMessage<T>> & { readonly [kFrame]: string, readonly [kBytes]: Buffer }

/** `prefix` + each line of `text`: CR, LF and CRLF all end a line, so each becomes its own field line. */
function lines (prefix: string, text: string): string {
  if (!HAS_LINE_BREAK.test(text)) return prefix + text + '\n'
  return prefix + text.split(LINE_BREAK).join('\n' + prefix) + '\n'
}

function serializeData (data: unknown, serialize: Serializer): string {
  if (typeof data === 'string' && (serialize as { [kJsonOnly]?: true })[kJsonOnly] !== true) return data
  let text: unknown
  try {
    text = serialize(data)
  } catch (err) {
    throw new FST_SSE_SERIALIZE((err as Error).message, { cause: err })
  }
  if (typeof text !== 'string') {
    throw new FST_SSE_SERIALIZE(`the serializer returned ${describe(text)} for ${describe(data)}`)
  }
  return text
}

export function validateId (id: unknown): string {
  if (typeof id === 'number' && Number.isFinite(id)) return String(id)
  if (typeof id === 'string' && !HAS_ID_BREAKER.test(id)) return id
  throw new FST_SSE_INVALID_ID(describe(id))
}

export function validateEvent (event: unknown): string {
  if (typeof event === 'string' && !HAS_LINE_BREAK.test(event)) return event
  throw new FST_SSE_INVALID_EVENT(describe(event))
}

export function validateRetry (retry: unknown): number {
  if (typeof retry === 'number' && Number.isSafeInteger(retry) && retry >= 0) return retry
  throw new FST_SSE_INVALID_RETRY(describe(retry))
}

/** A `retry:` line on its own (it sets the reconnection time; no event is dispatched). */
export function retryFrame (ms: number): string {
  return 'retry: ' + validateRetry(ms) + '\n\n'
}

/** Comment lines on their own. Clients ignore them; proxies see traffic. */
export function commentFrame (text: string): string {
  if (typeof text !== 'string') throw new FST_SSE_INVALID_COMMENT(describe(text))
  return lines(': ', text) + '\n'
}

/**
 * One message as one frame. Fields are checked before anything is built, so an invalid message
 * yields an error and no partial frame: no injected line can reach the wire.
 */
export function messageFrame (message: SseMessage, serialize: Serializer): string {
  let frame = ''
  if (message.comment !== undefined) {
    if (typeof message.comment !== 'string') throw new FST_SSE_INVALID_COMMENT(describe(message.comment))
    frame += lines(': ', message.comment)
  }
  if (message.retry !== undefined) frame += 'retry: ' + validateRetry(message.retry) + '\n'
  if (message.id !== undefined) frame += 'id: ' + validateId(message.id) + '\n'
  if (message.event !== undefined) frame += 'event: ' + validateEvent(message.event) + '\n'
  if (message.data !== undefined) frame += lines('data: ', serializeData(message.data, serialize))
  return frame + '\n'
}

/** Any value that is not a message is the data of one event. */
export function dataFrame (data: unknown, serialize: Serializer): string {
  return lines('data: ', serializeData(data, serialize)) + '\n'
}

/** The frame for anything a source yields: prepared message, message, or data. */
export function frameOf (value: unknown, serialize: Serializer): string {
  if (typeof value === 'string') return lines('data: ', value) + '\n'
  if (typeof value === 'object' && value !== null) {
    // A prepared message first: one property read on the broadcast path, no key walk.
    const prepared = (value as Partial<PreparedMessage>)[kFrame]
    if (prepared !== undefined) return prepared
    if (isMessage(value)) return messageFrame(value, serialize)
  }
  return dataFrame(value, serialize)
}

/** The bytes of a prepared message's frame; undefined for any other value. */
export function preparedBytes (value: unknown): Buffer | undefined {
  return typeof value === 'object' && value !== null ? (value as Partial<PreparedMessage>)[kBytes] : undefined
}

/**
 * A frame's UTF-8 bytes in memory of their own. `Buffer.from()` cuts a small string's bytes from
 * Node's shared 8 KiB pool, and the slice keeps the whole slab alive: a channel's history, kept for
 * hours, held megabytes of other code's buffers.
 */
function ownBytes (frame: string): Buffer {
  const bytes = Buffer.allocUnsafeSlow(Buffer.byteLength(frame))
  bytes.write(frame)
  return bytes
}

/**
 * Build a message's frame once and freeze it with the message, so a broadcast to many streams
 * serializes once and every stream writes the same string.
 */
export function prepare<T> (message: SseMessage<T>, serialize: Serializer): PreparedMessage<T> {
  const frame = messageFrame(message, serialize)
  return Object.freeze(Object.defineProperties({ ...message }, {
    [kFrame]: { value: frame },
    [kBytes]: { value: ownBytes(frame) }
  })) as PreparedMessage<T>
}

/**
 * A frame built elsewhere, written as it is: a stream of several channels frames each of their events
 * with its own cursor. It carries no message fields and no bytes of its own.
 */
export function builtFrame (frame: string): PreparedMessage<never> {
  return { [kFrame]: frame } as unknown as PreparedMessage<never>
}

/** Whether `value` carries its frame already (a channel's event, or a built frame). */
export function isPrepared (value: unknown): boolean {
  return typeof value === 'object' && value !== null && (value as Partial<PreparedMessage>)[kFrame] !== undefined
}

/** The frame a prepared message carries. */
export function preparedFrame (message: PreparedMessage): string {
  return message[kFrame]
}
