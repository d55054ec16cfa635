import type {
  ContextConfigDefault,
  FastifyBaseLogger,
  FastifySchema,
  FastifyTypeProvider,
  FastifyTypeProviderDefault,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerBase,
  RawServerDefault,
  RouteGenericInterface
} from 'fastify'
// Not re-exported by fastify's entry, yet part of FastifyReply's signature (which merging must repeat).
import type { FastifyReplyType, ResolveFastifyReplyType } from 'fastify/types/type-provider.js'
import type { SseContext } from './context.js'
import type { SseDeclaredEventsOf, SseEventOf, SseEventsResponse } from './events/declare.js'
import type { ResumableOptions } from './resumable/streams.js'
import type { SseMessage } from './message.js'
import type { SseStreamOptions } from './options.js'
import type { SseSource } from './source.js'
import type { SseStats } from './stats.js'

/** A message as a channel delivers it: always with the id the channel gave it. */
export interface ChannelMessage<T = unknown> extends Readonly<SseMessage<T>> {
  readonly id: string
}

export interface SubscribeOptions {
  /** Replay every event kept in history after this id before the live ones. */
  lastEventId?: string | undefined
  /** Ends the subscription when aborted. */
  signal?: AbortSignal | undefined
}

export interface PublishOptions {
  /**
   * Publishes at most once per key: a publish with a key this channel saw within the plugin's
   * `idempotencyWindow` stores nothing and resolves to the first event's id (through Redis, checked
   * in the same script that appends). Retry a publish that failed with the same key and it is
   * delivered exactly once. A non-empty string of at most 200 characters.
   */
  idempotencyKey?: string | undefined
}

/** One producer, many listeners: publish once, every subscriber on every instance receives it. */
export interface Channel<T = unknown> {
  readonly name: string
  /** Subscribers on this app. */
  readonly size: number
  /**
   * Resolves to the event's id (opaque, ordered) once the event is stored. Rejects with
   * `FST_SSE_BACKEND_UNAVAILABLE` when nothing was stored, or `FST_SSE_PUBLISH_OUTCOME_UNKNOWN` when
   * Redis did not answer in time (retry with the same `idempotencyKey`). A value that is a message
   * (see `isMessage`) publishes its fields; the event name `sse-gap` is reserved.
   */
  publish (value: T | SseMessage<T>, options?: PublishOptions): Promise<string>
  /**
   * Publishes `data` as the data of one event, whatever its shape: untrusted input (a request body)
   * can never become an event name, an id or a `retry:`.
   */
  publishData (data: T, options?: PublishOptions): Promise<string>
  /** History after `lastEventId` (when given), then live events: in publish order, no gaps, no duplicates. */
  subscribe (options?: SubscribeOptions): AsyncIterable<ChannelMessage<T>>
  /**
   * Where the channel stands now: an id from which a subscription gets every event published from
   * now on (the newest event's id; before the first, an id that precedes it). Rejects as `publish` does
   * when the backend cannot answer.
   */
  position (): Promise<string>
}

export interface ChannelOptions {
  /**
   * The channel's events, declared with `sseEvents()` (the same declaration a route's response schema
   * uses): every publish is checked against it (an undeclared event is refused; data is validated
   * when the declaration asks for it) and serialized by its compiled schema.
   */
  events?: SseEventsResponse<any> | undefined
}

/** A declared event as a channel delivers it, with its id; `message` events may come without a name. */
export type DeclaredChannelMessage<Events> = {
  [K in keyof Events & string]: Readonly<{
    id: string
    event: K extends 'message' ? K | undefined : K
    data: Events[K]
    retry?: number
    comment?: string
  }>
}[keyof Events & string]

/** Events were lost before this point (see `GAP_EVENT`): its data is JSON `{ "lastEventId": ... }`. */
export type GapNotice = Readonly<{ id: string, event: 'sse-gap', data: string }>

/** A channel whose events were declared: publish and subscribe are typed by the declaration. */
export interface DeclaredChannel<Events> {
  readonly name: string
  readonly size: number
  /** As `Channel.publish`; rejects with `FST_SSE_UNDECLARED_EVENT` or `FST_SSE_INVALID_DATA` before storing anything. */
  publish (value: SseEventOf<Events>, options?: PublishOptions): Promise<string>
  /** Publishes `data` as an unnamed (`message`) event. */
  publishData (data: 'message' extends keyof Events ? Events['message'] : never, options?: PublishOptions): Promise<string>
  /** As `Channel.subscribe`; a gap notice (`sse-gap`) may come between events. */
  subscribe (options?: SubscribeOptions): AsyncIterable<DeclaredChannelMessage<Events> | GapNotice>
}

/** `reply.sse()`: typed by the route's declared events (`sseEvents()` in its response schema), if any. */
export type SseReplyMethod<Reply> = [SseDeclaredEventsOf<Reply>] extends [never]
  ? <T = unknown>(source: SseSource<T>, options?: SseStreamOptions) => Promise<void>
  : (source: SseSource<SseEventOf<SseDeclaredEventsOf<Reply>>>, options?: SseStreamOptions) => Promise<void>

/** `app.sse`. */
export interface SseInstance {
  /**
   * The channel of that name: the same object on every call while it is in use. One idle for the
   * plugin's `channelIdleTimeout` is forgotten (with its in-memory history); an object kept from before
   * still works, and never splits the name's subscribers in two.
   */
  channel<T = unknown> (name: string): Channel<T>
  /** A channel with declared events (see `ChannelOptions.events`). */
  channel<Events> (name: string, options: { events: SseEventsResponse<Events> }): DeclaredChannel<Events>
  channel<T = unknown> (name: string, options: ChannelOptions): Channel<T>
  /**
   * A source for `reply.sse()` carrying several channels on one stream (a page with many panels needs
   * one connection, not one per panel): each event is named after its channel (`weather`, or
   * `weather.alert` for the channel's own `alert` event) and its id carries every channel's position,
   * so the stream's Last-Event-ID resumes each channel exactly.
   */
  multiplex (names: readonly string[]): SseSource
  /**
   * A source for `reply.sse()` that starts `source` as a resumable stream under `key` (a generation id)
   * and streams it from the start. The generation runs on when this client leaves, until it is done,
   * cancelled or `maxDuration` passed; its output is kept (the channel's history) so any client, on any
   * instance sharing the backend, reads it with `reply.sseResume(key)`. Its last event is `sse-end`.
   */
  resumable (key: string, source: SseSource, options?: ResumableOptions): SseSource
  /**
   * Stop the resumable stream `key` wherever it runs: its signal aborts, it ends with reason
   * `cancelled`. Resolves to whether it was running (false: unknown, or over already).
   */
  cancel (key: string): Promise<boolean>
  /** Streams on this app whose source is not finalized yet. */
  readonly streams: number
  /** Open streams, by route and channel; events, bytes, refusals and ends so far (see `SseStats`). */
  stats (): SseStats
}

declare module 'fastify' {
  // Declaration merging needs the exact type parameters of Fastify's interface, used or not.
  /* eslint-disable @typescript-eslint/no-unused-vars */
  interface FastifyReply<
    RouteGeneric extends RouteGenericInterface = RouteGenericInterface,
    RawServer extends RawServerBase = RawServerDefault,
    RawRequest extends RawRequestDefaultExpression<RawServer> = RawRequestDefaultExpression<RawServer>,
    RawReply extends RawReplyDefaultExpression<RawServer> = RawReplyDefaultExpression<RawServer>,
    ContextConfig = ContextConfigDefault,
    SchemaCompiler extends FastifySchema = FastifySchema,
    TypeProvider extends FastifyTypeProvider = FastifyTypeProviderDefault,
    ReplyType extends FastifyReplyType = ResolveFastifyReplyType<TypeProvider, SchemaCompiler, RouteGeneric>
  > {
    /**
     * Stream every value of `source` as one SSE frame. Resolves when the stream is over; never rejects
     * (errors are replied before the stream starts, or logged with its end). On a route that declared
     * its events (`sseEvents()` in its response schema, with a type provider), the source's values are
     * checked against the declaration.
     */
    sse: SseReplyMethod<ReplyType>
    /**
     * Stream the resumable stream `key` (see `app.sse.resumable`) from the request's Last-Event-ID, or
     * from its start, to its end: 404 when there is no such stream (or its record expired), 204 (an
     * EventSource stops reconnecting) when the client's last id is its end.
     */
    sseResume (key: string): Promise<void>
    /**
     * The stream's context: the same object a source function is given. Its `signal` aborts when the
     * client leaves (even before the stream starts, while the handler still awaits) or the stream
     * ends; a `{ sse: true }` handler reads it instead of taking a context argument.
     */
    readonly sseContext: SseContext
  }
  /* eslint-enable @typescript-eslint/no-unused-vars */

  interface FastifyRequest {
    /**
     * The `Last-Event-ID` request header, read as UTF-8 when its bytes are UTF-8; undefined when absent
     * or longer than `maxLastEventIdLength`.
     */
    readonly lastEventId: string | undefined
  }

  interface FastifyInstance {
    sse: SseInstance
  }

  // Declaration merging needs the exact type parameters of Fastify's interface, used or not.
  /* eslint-disable @typescript-eslint/no-unused-vars */
  interface RouteShorthandOptions<
    RawServer extends RawServerBase = RawServerDefault,
    RawRequest extends RawRequestDefaultExpression<RawServer> = RawRequestDefaultExpression<RawServer>,
    RawReply extends RawReplyDefaultExpression<RawServer> = RawReplyDefaultExpression<RawServer>,
    RouteGeneric extends RouteGenericInterface = RouteGenericInterface,
    ContextConfig = ContextConfigDefault,
    SchemaCompiler extends FastifySchema = FastifySchema,
    TypeProvider extends FastifyTypeProvider = FastifyTypeProviderDefault,
    Logger extends FastifyBaseLogger = FastifyBaseLogger
  > {
    /** Stream an async iterable returned by the handler; an object sets that route's stream options. */
    sse?: boolean | SseStreamOptions
  }
  /* eslint-enable @typescript-eslint/no-unused-vars */
}
