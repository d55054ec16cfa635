import { REFUSAL_REASONS, type RefusalReason } from './admission.js'
import type { EndReason } from './pump.js'

/** `app.sse.stats()`: a fresh plain object on every call. */
export interface SseStats {
  /** Streams open on this app. */
  open: number
  /** Sources opened (or opening) and not finalized yet: open streams, and ended ones still closing theirs. */
  sources: number
  /** Open streams by route, `${method} ${route pattern}` (never a URL, which may carry secrets). */
  routes: Record<string, number>
  /** Subscribers by channel, on this app (channels that have any). */
  channels: Record<string, number>
  /** Events written by every stream since the app started. */
  events: number
  /** Bytes of SSE text written since the app started (before any compression). */
  bytes: number
  /** Streams refused, by the limit that refused them. */
  refusals: Record<RefusalReason, number>
  /** Streams ended, by why: 'too-slow' counts channel subscribers ended for falling behind. */
  ends: Record<EndReason, number>
  /** Channel subscriptions that replayed history from a Last-Event-ID. */
  replays: number
  /** Notices of lost events (`sse-gap`) handed to subscribers. */
  gaps: number
}

const END_REASONS: readonly EndReason[] = ['source-done', 'client-gone', 'error', 'server-closing', 'too-slow',
  'max-lifetime', 'write-timeout', 'expired']

function zeroes<K extends string> (keys: readonly K[]): Record<K, number> {
  return Object.fromEntries(keys.map(key => [key, 0])) as Record<K, number>
}

/** What ended streams and refusals leave behind: counters, added to as they happen. */
export class StreamTotals {
  events = 0
  bytes = 0
  readonly refusals = zeroes(REFUSAL_REASONS)
  readonly ends = zeroes(END_REASONS)

  /** A copy: the caller may keep or change it. */
  snapshot (): Pick<SseStats, 'events' | 'bytes' | 'refusals' | 'ends'> {
    return { events: this.events, bytes: this.bytes, refusals: { ...this.refusals }, ends: { ...this.ends } }
  }
}

/** Replays and gap notices of every channel of one app. */
export interface ChannelCounters {
  replays: number
  gaps: number
}
