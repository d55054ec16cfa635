import type { Serializer } from '../frame.js'
import type { SseMessage } from '../message.js'
import type { ChannelMessage } from '../types.js'

// The one contract the memory and the Redis backends share: where a channel's events are stored,
// and how they reach every app. Event ids are `<ms>-<seq>` strings (Redis stream ids, or their
// in-memory twin), ordered by `compareIds`.

/** What a backend hands to this app: events in publish order, and the news that some were lost. */
export interface BackendSink {
  /** One event of `channel`, framed once for every subscriber of this app. */
  deliver (channel: string, message: ChannelMessage): void
  /** Events of `channel` after `lastId` could not reach this app and cannot be replayed (Redis only). */
  gap (channel: string, lastId: string): void
}

/** The events kept after an id, and whether that is all of them. */
export interface Replay {
  /** Oldest first. */
  readonly messages: readonly ChannelMessage[]
  /** Events between the id and `messages` are gone (older than the history), or the id is unknown. */
  readonly gap: boolean
}

/** What only the plugin's own publishes ask of a backend: resumable streams. */
export interface InternalPublish {
  /**
   * Without an idempotency key: the key of this publish's tries, so a try again after an unknown outcome
   * (within the backend's short window for a publish's own key) stores nothing twice.
   */
  readonly attempt?: string
  /** Save the event's id as the field `end` of the channel's record, kept this long, with the event, at once. */
  readonly recordEnd?: number
}

export interface ChannelBackend {
  /**
   * Give `message` its id, store it in the channel's history and deliver it to every app (this one
   * through the sink). Its data is serialized once, here. Resolves to the id once stored. With an
   * `idempotencyKey` seen on `channel` within the idempotency window: stores nothing, resolves to
   * the id the first publish got. `serialize`: the data's own serializer (a declared event's), else the app's.
   * `internal`: what the plugin alone asks (see InternalPublish).
   */
  publish (channel: string, message: SseMessage, idempotencyKey?: string, serialize?: Serializer,
    internal?: InternalPublish): Promise<string>
  /** The kept events after `lastEventId`. */
  replay (channel: string, lastEventId: string): Promise<Replay>
  /** An id a replay from which gives every event of `channel` published from now on (see Channel.position). */
  position (channel: string): Promise<string>
  /** This app has subscribers on `channel` now: deliver its events here (a replay waits until they flow). */
  watch (channel: string): void
  /** This app has no subscriber left on `channel`. */
  unwatch (channel: string): void
  /** The hub forgot `channel` (idle): drop what this app keeps for it (the in-memory history). */
  forget (channel: string): void
  /**
   * Keep a small record about `channel` (string fields) for `ttlMs`, where every app sharing the backend
   * can read it, only if none is kept (by any app): resolves to whether this call made it. The one step
   * that lets a single app anywhere own a resumable stream; its end is added by `publish` (recordEnd).
   */
  createRecord (channel: string, fields: Readonly<Record<string, string>>, ttlMs: number): Promise<boolean>
  /** The record kept about `channel`, or undefined when there is none (never saved, or expired). */
  readRecord (channel: string): Promise<Readonly<Record<string, string>> | undefined>
  /** Drop what this app keeps that expired before `now` (called by the hub's sweep). */
  sweep? (now: number): void
  /** Release what the backend opened. */
  close (): Promise<void>
}

/** The part of an id before the dash and the part after, as numbers. */
function partsOf (id: string): [number, number] {
  const dash = id.indexOf('-')
  return [Number(id.slice(0, dash)), Number(id.slice(dash + 1))]
}

/** Order of two ids a backend gave: negative, zero or positive, as for `Array.prototype.sort`. */
export function compareIds (a: string, b: string): number {
  const [msA, seqA] = partsOf(a)
  const [msB, seqB] = partsOf(b)
  return msA - msB || seqA - seqB
}

/** `<ms>-<seq>`, as a backend writes ids (15 digits each stay exact as numbers). */
export const ID_PATTERN = /^\d{1,15}-\d{1,15}$/
/** The longest id ID_PATTERN allows. */
export const MAX_ID_LENGTH = 31
