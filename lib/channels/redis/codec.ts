import { kJsonOnly, messageFrame, prepare, type Serializer } from '../../frame.js'
import type { SseMessage } from '../../message.js'
import type { ChannelMessage } from '../../types.js'
import { ID_PATTERN } from '../backend.js'
import { GAP_EVENT } from '../subscription.js'
import type { RawEntry } from './scripts.js'

// What crosses Redis, both ways. Every event is a body: a JSON array [kind, text, event, retry,
// comment], null for what is absent. Its data was serialized once, by the app that published, and
// every app frames that text as it is.

const NO_DATA = 0
/** The data was a string: it went as it was. */
const TEXT = 1
/** The data went through a custom `serialize`: apps receive that text. */
const SERIALIZED = 2
/** The data went through JSON.stringify: apps receive it back through JSON.parse. */
const JSON_TEXT = 3
type Body = [kind: number, text: string | null, event: string | null, retry: number | null, comment: string | null]

/** A stream entry read by field name: `p` is the id of the entry before it, `b` its body. */
export interface Entry {
  readonly id: string
  /** Undefined for an entry this plugin did not write. */
  readonly prev: string | undefined
  readonly body: string | undefined
}

export function readEntry ([id, fields]: RawEntry): Entry {
  let prev: string | undefined
  let body: string | undefined
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (fields[i] === 'p') prev = fields[i + 1]
    else if (fields[i] === 'b') body = fields[i + 1]
  }
  return { id, prev, body }
}

/** `<id> <prev> <body>` as an entry; throws on anything else. */
export function readAnnouncement (payload: string): Entry {
  const space = payload.indexOf(' ')
  const next = payload.indexOf(' ', space + 1)
  const id = payload.slice(0, space)
  if (space === -1 || next === -1 || !ID_PATTERN.test(id)) throw new Error('not an announcement of this plugin')
  // A marker's has no body (an event's is never empty).
  return { id, prev: payload.slice(space + 1, next), body: next === payload.length - 1 ? undefined : payload.slice(next + 1) }
}

/**
 * Whether events after `after` are missing from `entries` (the first ones to follow it, as the
 * replay script answers), given the stream's `last` id: the one rule for "is there a gap?".
 */
export function missesEvents (after: string, entries: readonly Entry[], last: string): boolean {
  return entries.length > 0 ? entries[0]!.prev !== after : last !== after
}

/** The entry a position read made on a stream that did not exist (see ssePlace): no event. */
export function isMarker (entry: Entry): boolean {
  return entry.body === undefined && entry.prev !== undefined
}

export class BodyCodec {
  readonly #serialize: Serializer
  readonly #json: boolean

  constructor (serialize: Serializer) {
    this.#serialize = serialize
    this.#json = serialize === JSON.stringify
  }

  /** Validate every field exactly as the stream would (same errors), and serialize the data once. */
  encode (message: SseMessage, serialize?: Serializer): string {
    let text: string | null = null
    const chosen = serialize ?? this.#serialize
    // A serializer that writes strings as JSON too keeps saying so through the one that captures its text.
    const jsonOnly = (chosen as { [kJsonOnly]?: true })[kJsonOnly] === true
    messageFrame(message, Object.assign((value: unknown) => (text = chosen(value)), jsonOnly ? { [kJsonOnly]: true } : {}))
    const { data } = message
    // A declared event's serializer writes JSON (fast-json-stringify): apps parse it back.
    const json = serialize !== undefined || this.#json
    const asText = typeof data === 'string' && !jsonOnly
    const kind = data === undefined ? NO_DATA : asText ? TEXT : json ? JSON_TEXT : SERIALIZED
    const body: Body = [kind, kind === TEXT ? data as string : text, message.event ?? null,
      message.retry ?? null, message.comment ?? null]
    return JSON.stringify(body)
  }

  /**
   * A stored event as a message framed once for every subscriber of this app, without serializing
   * again. Throws on a body this plugin did not write (its fields are validated as on publish).
   */
  decode (id: string, body: string | undefined): ChannelMessage {
    if (body === undefined) throw new Error('an entry without a body: not written by this plugin')
    const parsed: unknown = JSON.parse(body)
    if (!isBody(parsed)) throw new Error('a body of another shape: not written by this plugin')
    const [kind, text, event, retry, comment] = parsed
    // Only this app's channel may say events were lost (publish refuses the name).
    if (event === GAP_EVENT) throw new Error(`the reserved event name ${GAP_EVENT}: not published by this plugin`)
    const message: SseMessage = { id }
    if (event !== null) message.event = event
    if (retry !== null) message.retry = retry
    if (comment !== null) message.comment = comment
    if (kind === JSON_TEXT) {
      const value = parsedOrText(text!)
      // A value whose JSON is a string (a Date) keeps that JSON text: it is what the frame must carry.
      message.data = typeof value === 'string' ? text : value
    } else if (kind !== NO_DATA) {
      message.data = text
    }
    return prepare(message, () => text!) as ChannelMessage
  }
}

/** JSON text as its value; text a serializer wrote that is not JSON after all (a `format: 'unsafe'` string) as it is. */
function parsedOrText (text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

function isBody (value: unknown): value is Body {
  if (!Array.isArray(value) || value.length !== 5) return false
  const [kind, text, event, retry, comment] = value as unknown[]
  return (kind === NO_DATA ? text === null : (kind === TEXT || kind === SERIALIZED || kind === JSON_TEXT) && typeof text === 'string') &&
    (event === null || typeof event === 'string') &&
    (retry === null || typeof retry === 'number') &&
    (comment === null || typeof comment === 'string')
}
