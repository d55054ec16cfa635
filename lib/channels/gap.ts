import { prepare } from '../frame.js'
import type { ChannelMessage } from '../types.js'

/**
 * The event a subscriber receives when events it should have had are gone: its `lastEventId` is
 * older than the history or unknown, or (with Redis) events could not reach this app. Its data is
 * JSON `{ "lastEventId": <the last id the subscriber had> }`; what is still kept follows it.
 */
export const GAP_EVENT = 'sse-gap'

/**
 * The last event of a resumable stream: its data is JSON `{ "reason": ... }` (`done`, `error`,
 * `cancelled`, `timeout`, `server-closing`). A client that received it has the whole stream.
 */
export const END_EVENT = 'sse-end'

/** Gap notices, told apart from published events by identity (a name or an id could be copied). */
const notices = new WeakSet<ChannelMessage>()

/** A gap notice after `lastId`. Its id is `lastId`, so a client that reconnects right after it asks again. */
export function gapMessage (lastId: string): ChannelMessage {
  const message = prepare({ id: lastId, event: GAP_EVENT, data: JSON.stringify({ lastEventId: lastId }) },
    JSON.stringify) as ChannelMessage
  notices.add(message)
  return message
}

/** Whether `message` is a gap notice: never in id order, never dropped as a repeat. */
export function isGapNotice (message: ChannelMessage): boolean {
  return notices.has(message)
}
