import type { ChannelMessage } from '../types.js'
import { compareIds, type Replay } from './backend.js'
import { gapMessage, isGapNotice } from './gap.js'

// Pure: what a subscriber that resumes from an id is handed once its replay arrives. Live events kept
// flowing while the replay was read: some of them the replay holds too, and some may still come
// (through Redis, an announcement can trail the stream it was read from).

export interface Merged {
  /** In order: the gap notice when there is a gap, the replayed events, then the live ones that waited and are new. */
  readonly messages: ChannelMessage[]
  /** How many of `messages`, from the front, come from the replay (the notice included). */
  readonly replayed: number
  /** Live events still to come with an id up to this one were replayed: drop them. Null: take every one. */
  readonly floor: string | null
}

/**
 * Merge `replay` (the events kept after `lastEventId`) with `waiting` (the live events and gap
 * notices that arrived meanwhile, in arrival order): no event twice, none lost, ids in order.
 */
export function mergeReplay ({ messages, gap }: Replay, lastEventId: string, waiting: readonly ChannelMessage[]): Merged {
  const replay = gap ? [gapMessage(lastEventId), ...messages] : messages
  // The newest id the subscriber holds once the replay is out; none after a gap with nothing kept.
  const last = messages.length > 0 ? messages[messages.length - 1]!.id : gap ? null : lastEventId
  if (last === null) return { messages: replay.concat(waiting), replayed: replay.length, floor: null }
  const fresh = waiting.filter(message => isGapNotice(message) || compareIds(message.id, last) > 0)
  // Once a live event past `last` is out, every later one is past it too.
  const passed = fresh.some(message => !isGapNotice(message))
  return { messages: replay.concat(fresh), replayed: replay.length, floor: passed ? null : last }
}
