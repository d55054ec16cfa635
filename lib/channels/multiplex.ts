import { describe } from '../describe.js'
import { FST_SSE_INVALID_CHANNEL, FST_SSE_INVALID_OPTION } from '../errors.js'
import { builtFrame, preparedFrame, validateEvent, type PreparedMessage } from '../frame.js'
import type { SseContext } from '../context.js'
import type { ChannelMessage, SubscribeOptions } from '../types.js'
import { MAX_ID_LENGTH } from './backend.js'
import { decodeCursor, encodeCursor } from './cursor.js'

// Several channels on one stream: a browser keeps at most six HTTP/1.1 connections per origin, so a
// page with many live panels runs out of them; one stream carrying every panel's channel does not.
// Each event is named after its channel (`weather`, or `weather.alert` for a channel's own `alert`),
// and its id is a cursor with every channel's position, so one Last-Event-ID resumes all of them.
// A stream opens with that cursor when its id lacks a channel (always, for a new client): a channel
// that sends nothing before the client leaves is still resumed from where the stream started.

/**
 * The event that opens a stream of several channels: its id is where the stream starts in each, its
 * data empty. Named, so `onmessage` never sees it. It has a data line: a frame of an id alone would
 * move a browser's id, but not the `eventsource` package's nor `eventsource-parser`'s, which dispatch
 * nothing without data.
 */
export const CURSOR_EVENT = 'sse-cursor'

/** What the multiplexer needs of a channel. */
export interface Subscribable {
  subscribe (options?: SubscribeOptions): AsyncIterable<ChannelMessage>
  position (): Promise<string>
}

/**
 * A channel event's frame without its `id:` and `event:` lines (data, comment, retry as they were
 * framed once, when published): each stream puts its own cursor and name in front. Kept per event,
 * so every stream of a broadcast reuses it.
 */
const bodies = new WeakMap<ChannelMessage, string>()

function bodyOf (message: ChannelMessage): string {
  let body = bodies.get(message)
  if (body === undefined) {
    // Every line of a frame starts with its field name (data lines with `data: `): no data line is cut.
    body = preparedFrame(message as PreparedMessage).split('\n')
      .filter(line => !line.startsWith('id: ') && !line.startsWith('event: ')).join('\n')
    bodies.set(message, body)
  }
  return body
}

/** The event name a channel's event gets on a stream of several: the channel's name, then its own. */
function eventName (channel: string, message: ChannelMessage): string {
  return message.event === undefined ? channel : channel + '.' + message.event
}

function checkNames (names: readonly string[]): void {
  if (!Array.isArray(names) || names.length === 0) {
    throw new FST_SSE_INVALID_CHANNEL(`a list of channel names to stream together; got ${describe(names)}`)
  }
  for (const name of names) {
    // A channel's name becomes an event name: one that could inject a field is refused.
    if (typeof name !== 'string') throw new FST_SSE_INVALID_CHANNEL(describe(name))
    validateEvent(name)
    try {
      encodeURIComponent(name)
    } catch {
      throw new FST_SSE_INVALID_CHANNEL(`${describe(name)}: not well-formed text (a lone surrogate), it could not be put in an id`)
    }
    if (name === CURSOR_EVENT) throw new FST_SSE_INVALID_CHANNEL(`${describe(name)}: its events could not be told from the stream's cursor`)
  }
  const unique = new Set(names)
  if (unique.size !== names.length) throw new FST_SSE_INVALID_CHANNEL(`${describe(names)}: each channel once`)
  // `a.b` names channel a's event b: a channel of that name beside a could not be told from it.
  for (const name of names) {
    for (let dot = name.indexOf('.'); dot !== -1; dot = name.indexOf('.', dot + 1)) {
      const owner = name.slice(0, dot)
      if (unique.has(owner)) {
        throw new FST_SSE_INVALID_CHANNEL(`${describe(name)} beside ${describe(owner)}: its events could not be told from ${owner}'s own`)
      }
    }
  }
}

/**
 * A client's id longer than `maxIdLength` is ignored: it would resume nothing, and lose what was
 * published while it was away without a gap notice. So the set is refused when its cursor could grow
 * past it, loudly, when the source is made.
 */
function checkIdLength (names: readonly string[], maxIdLength: number): void {
  let longest = names.length - 1
  for (const name of names) longest += encodeURIComponent(name).length + 1 + MAX_ID_LENGTH
  if (longest > maxIdLength) {
    throw new FST_SSE_INVALID_OPTION('maxLastEventIdLength', `the id of a stream of ${names.length} channels ` +
      `(${describe(names)}) can reach ${longest} bytes, past ${maxIdLength}: a client's would be ignored and ` +
      `resume nothing; raise it to ${longest} or more`)
  }
}

/**
 * Put in `cursor` where each channel it lacks stands now; resolves to whether any was. A channel whose
 * position cannot be read (the backend down) is read live, as it would be without this.
 */
async function place (cursor: Map<string, string>, names: readonly string[], channels: readonly Subscribable[]): Promise<boolean> {
  const positions = await Promise.all(names.map((name, index) =>
    cursor.has(name) ? undefined : channels[index]!.position().catch(() => undefined)))
  let placed = false
  for (const [index, position] of positions.entries()) {
    if (position === undefined) continue
    cursor.set(names[index]!, position)
    placed = true
  }
  return placed
}

/**
 * The events of every channel in `names`, interleaved as they come, each framed with the stream's
 * cursor (see above), after the cursor itself when the client's id lacked a channel. A channel that
 * ends (its subscriber too slow, the app closing) ends the stream: the client resumes every channel
 * from its cursor.
 */
async function * interleave (names: readonly string[], channels: readonly Subscribable[], ctx: SseContext):
AsyncGenerator<PreparedMessage<never>> {
  const cursor = decodeCursor(ctx.lastEventId, names)
  // Read before subscribing: a subscription from a position replays what was published since.
  const placed = await place(cursor, names, channels)
  const { signal } = ctx
  // Each subscription ends when the stream does: a pending next() then settles, and this generator
  // returns instead of waiting for an event.
  const iterators = channels.map((channel, index) =>
    channel.subscribe({ lastEventId: cursor.get(names[index]!), signal })[Symbol.asyncIterator]())
  // Each channel's next() settles into one queue, and one waiter at a time is woken: racing every
  // pending next() per event would leave a reaction on a quiet channel's next() for each event of the
  // others, for the life of the stream.
  const settled: Array<[index: number, result: IteratorResult<ChannelMessage> | undefined, err: unknown]> = []
  let wake: (() => void) | undefined
  const pull = (index: number): void => {
    iterators[index]!.next().then(
      result => { settled.push([index, result, undefined]); wake?.() },
      (err: unknown) => { settled.push([index, undefined, err]); wake?.() })
  }
  for (let index = 0; index < iterators.length; index++) pull(index)
  try {
    if (placed) yield builtFrame('id: ' + encodeCursor(names, cursor) + '\nevent: ' + CURSOR_EVENT + '\ndata:\n\n')
    for (;;) {
      while (settled.length === 0) await new Promise<void>(resolve => { wake = resolve })
      const [index, result, err] = settled.shift()!
      if (result === undefined) throw err
      if (result.done === true) return
      const name = names[index]!
      const message = result.value
      cursor.set(name, message.id)
      pull(index)
      yield builtFrame('id: ' + encodeCursor(names, cursor) + '\nevent: ' + eventName(name, message) + '\n' + bodyOf(message))
    }
  } finally {
    await Promise.all(iterators.map(iterator => iterator.return?.()))
  }
}

/**
 * A source for `reply.sse()`: the channels named, on one stream. Names are checked here, once (and
 * that their cursor fits in `maxIdLength`, the longest Last-Event-ID the app takes); the
 * channels are subscribed when the stream starts, from the stream's Last-Event-ID.
 */
export function multiplex (names: readonly string[], channelOf: (name: string) => Subscribable, maxIdLength: number):
(ctx: SseContext) => AsyncIterable<unknown> {
  checkNames(names)
  checkIdLength(names, maxIdLength)
  const fixed = [...names]
  // The channels now (their names checked too): a bad name fails the handler, before any stream.
  const channels = fixed.map(channelOf)
  return ctx => interleave(fixed, channels, ctx)
}
