import type { SseChannel } from '../channels/channel.js'
import { END_EVENT } from '../channels/gap.js'
import { prepare } from '../frame.js'
import type { ChannelMessage } from '../types.js'

// The readers of a resumable stream: its channel from an id to the stream's end, never waiting past
// the deadline for an end that may never come.

const MAX_TIMER_DELAY = 2 ** 31 - 1
const DEADLINE = Symbol('deadline')

/** Where a reader stands: the channel, the id it reads after, and when it stops waiting for the end. */
export interface Reading {
  readonly channel: SseChannel
  readonly from: string
  /** Date.now() ms; Infinity once the end is recorded (it is in the history: no wait). */
  readonly until: number
  /** The start's id: a `lost` end carries it, so a client that had no id comes back with one (and stops). */
  readonly start: string
}

/** Framed here, as the channel's own events are: a route that declares its events lets it through as them. */
function lostEnd (start: string): ChannelMessage {
  return prepare({ id: start, event: END_EVENT, data: JSON.stringify({ reason: 'lost' }) }, JSON.stringify) as ChannelMessage
}

/**
 * A channel's events after `from`, until the stream's end (which it includes): the stream of one
 * reader. It ends with its connection (`signal`) too, and at `until` with an end of reason `lost`, so
 * nobody waits forever for an end that never comes.
 */
export async function * readFrom (reading: Reading, signal: AbortSignal): AsyncGenerator<ChannelMessage> {
  const { channel, from, until } = reading
  const reader = new AbortController()
  const leave = (): void => { reader.abort() }
  signal.addEventListener('abort', leave, { once: true })
  const timer = until === Infinity
    ? undefined
    : setTimeout(() => { reader.abort(DEADLINE) }, Math.min(Math.max(until - Date.now(), 0), MAX_TIMER_DELAY))
  try {
    for await (const message of channel.subscribe({ lastEventId: from, signal: reader.signal })) {
      yield message
      if (message.event === END_EVENT) return
    }
    if (reader.signal.reason === DEADLINE && !signal.aborted) yield lostEnd(reading.start)
  } finally {
    clearTimeout(timer)
    signal.removeEventListener('abort', leave)
  }
}

/** Past waiting for an end that never came: what is kept after `from`, then the `lost` end. */
export async function * replayThenLost (channel: SseChannel, reading: Reading): AsyncGenerator<ChannelMessage> {
  for (const message of await channel.kept(reading.from)) {
    yield message
    // Only when the end was published between the read of the record and this replay.
    /* c8 ignore next */
    if (message.event === END_EVENT) return
  }
  yield lostEnd(reading.start)
}
