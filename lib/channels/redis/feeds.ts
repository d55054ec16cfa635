import type { FastifyBaseLogger } from 'fastify'
import type { BackendSink } from '../backend.js'
import { compareIds } from '../backend.js'
import { ignore } from './connection.js'
import { isMarker, missesEvents, readAnnouncement, type BodyCodec, type Entry } from './codec.js'

// The channels this app has subscribers on, each a feed of announcements kept continuous: every
// announcement names the id before it, so a feed that missed one (a dropped connection, a Redis that
// restarted, a subscription not yet confirmed) fetches what is missing from the stream before it
// delivers anything newer, or tells its subscribers that events are gone.

/** What the feeds need from Redis. */
export interface FeedRedis {
  /** Redis' clock now, in ms. */
  now (): number
  /** Commands can be sent at once: a position read now is ordered before this app's later publishes. */
  available (): boolean
  /**
   * The id a feed goes on from. With a null start: the stream's last id, read at once (this app's
   * later publishes come after it). With a start time (Redis ms): the newest entry before then, ''
   * for the start of a stream, or '' again when what followed is no longer kept (a gap then): read
   * by time, it holds however late Redis answers (a subscriber that came during an outage).
   */
  position (stream: string, since: number | null): Promise<string>
  /** The entries after `after` (the newest kept, when they do not follow it) and the stream's last id. */
  fetch (stream: string, after: string): Promise<[last: string, entries: Entry[]]>
  /** Subscribe the pub/sub connection; rejects at once while it is down. */
  subscribe (announcements: string[]): Promise<unknown>
  unsubscribe (announcement: string): void
}

interface Feed {
  readonly name: string
  readonly stream: string
  readonly announcement: string
  /** The last event delivered, or where the stream stood when watched ('' for no stream); read once `positioned`. */
  last: string
  /** Announcements held while missing events are fetched; null while they flow. */
  held: Entry[] | null
  /** When it started, in Redis ms. */
  readonly started: number
  /** Its position is read by time ('started'), not as the stream's last id: Redis did not answer at once. */
  byTime: boolean
  /** Its start position is known. */
  positioned: boolean
  /** Redis confirmed its subscription on the current connection. */
  subscribed: boolean
  /**
   * Ids the last fetch delivered whose announcements may still come, late, over the other
   * connection; null once an announcement past them came (announcements arrive in stream order).
   */
  fetched: Set<string> | null
  /** A catch-up is running; `again`: run another round when it ends. */
  busy: boolean
  again: boolean
  /** Renewed whenever it hands this app an event or a notice (see `mark`). */
  mark: number
}

/** How long a feed waits before asking Redis again where it starts. */
const POSITION_RETRY_MS = 1000

export interface FeedNames {
  stream (channel: string): string
  announcement (channel: string): string
}

export class Feeds {
  readonly #redis: FeedRedis
  readonly #names: FeedNames
  readonly #codec: BodyCodec
  readonly #sink: BackendSink
  readonly #log: FastifyBaseLogger
  /** By pub/sub channel. */
  readonly #feeds = new Map<string, Feed>()
  /** The last mark given: marks never repeat, across feeds watched anew included. */
  #marks = 0

  constructor (redis: FeedRedis, names: FeedNames, codec: BodyCodec, sink: BackendSink, log: FastifyBaseLogger) {
    this.#redis = redis
    this.#names = names
    this.#codec = codec
    this.#sink = sink
    this.#log = log
  }

  watch (name: string): void {
    const feed: Feed = {
      name,
      stream: this.#names.stream(name),
      announcement: this.#names.announcement(name),
      last: '',
      held: [],
      started: this.#redis.now(),
      byTime: !this.#redis.available(),
      positioned: false,
      subscribed: false,
      fetched: null,
      busy: false,
      again: false,
      mark: ++this.#marks
    }
    this.#feeds.set(feed.announcement, feed)
    this.#start(feed)
  }

  /**
   * Where the channel's feed stands: the same mark as long as it hands this app nothing. A replay read
   * at one mark misses, for a subscriber that comes at another, what the feed handed out in between.
   */
  mark (name: string): number | undefined {
    return this.#feeds.get(this.#names.announcement(name))?.mark
  }

  unwatch (name: string): void {
    const announcement = this.#names.announcement(name)
    this.#feeds.delete(announcement)
    this.#redis.unsubscribe(announcement)
  }

  clear (): void {
    this.#feeds.clear()
  }

  /** The pub/sub connection is (again) ready: nothing is subscribed on it yet. */
  resubscribe (): void {
    const feeds = [...this.#feeds.values()]
    if (feeds.length === 0) return
    for (const feed of feeds) {
      feed.subscribed = false
      feed.held ??= []
    }
    // Refused, the connection went again (its next 'ready' tries again) or Redis said why (logged).
    this.#redis.subscribe(feeds.map(feed => feed.announcement)).then(() => {
      for (const feed of feeds) this.#subscribed(feed)
    }, ignore)
  }

  /** An announcement on `announcement`. */
  accept (announcement: string, payload: string): void {
    const feed = this.#feeds.get(announcement)
    // Only by a race: an announcement in flight while this app's last subscriber left.
    if (feed === undefined) return
    let entry: Entry
    try {
      entry = readAnnouncement(payload)
    } catch (err) {
      this.#log.warn({ err, channel: feed.name }, 'sse channel ignored a Redis message it cannot read')
      return
    }
    if (feed.held !== null) {
      feed.held.push(entry)
      return
    }
    if (feed.fetched !== null) {
      // Delivered already, by a fetch that overtook its announcement.
      if (feed.fetched.has(entry.id)) return
      feed.fetched = null
    }
    if (entry.prev === feed.last) {
      this.#deliver(feed, entry)
    } else {
      // A hole before it (or a history that went back): fetch what is missing first.
      feed.held = [entry]
      this.#catchUp(feed)
    }
  }

  async #start (feed: Feed): Promise<void> {
    // Refused at once while the connection is down: its next 'ready' subscribes every feed.
    const subscribing = this.#redis.subscribe([feed.announcement]).then(() => { feed.subscribed = true }, ignore)
    await this.#position(feed)
    await subscribing
    if (feed.positioned && feed.subscribed) this.#catchUp(feed)
  }

  /** Read where the feed starts; when Redis cannot say, ask again, by time, until it does or the feed goes. */
  async #position (feed: Feed): Promise<void> {
    const since = feed.byTime ? feed.started : null
    // Should this read fail, only the time says, later, when the feed started.
    feed.byTime = true
    try {
      feed.last = await this.#redis.position(feed.stream, since)
      feed.positioned = true
    } catch (err) {
      this.#log.warn({ err, channel: feed.name }, 'sse channel could not read its position in Redis; asking again')
      // The connection may never drop (a Redis paused past the timeout): nothing else would ask.
      setTimeout(() => { this.#retryPosition(feed) }, POSITION_RETRY_MS).unref()
    }
  }

  async #retryPosition (feed: Feed): Promise<void> {
    if (feed.positioned || !this.#watching(feed)) return
    await this.#position(feed)
    if (feed.positioned && feed.subscribed && this.#watching(feed)) this.#catchUp(feed)
  }

  async #subscribed (feed: Feed): Promise<void> {
    feed.subscribed = true
    if (!feed.positioned) await this.#position(feed)
    if (feed.positioned && this.#watching(feed)) this.#catchUp(feed)
  }

  #watching (feed: Feed): boolean {
    return this.#feeds.get(feed.announcement) === feed
  }

  async #catchUp (feed: Feed): Promise<void> {
    feed.held ??= []
    if (feed.busy) {
      feed.again = true
      return
    }
    feed.busy = true
    do {
      feed.again = false
      await this.#round(feed)
    } while (feed.again && this.#watching(feed))
    feed.busy = false
  }

  /** Fetch what follows `feed.last`, deliver it, then what was held; another round if a hole remains. */
  async #round (feed: Feed): Promise<void> {
    const after = feed.last
    // Announced before the fetch was sent: the fetch answers for them. One that still does not follow
    // was trimmed, or forged by another Redis client; fetching again for it would never end.
    const answered = feed.held?.length ?? 0
    let last: string | null = null
    let entries: Entry[] = []
    try {
      [last, entries] = await this.#redis.fetch(feed.stream, after)
    } catch (err) {
      this.#log.warn({ err, channel: feed.name }, 'sse channel could not fetch the events it missed from Redis')
    }
    if (!this.#watching(feed)) return
    if (last === null || missesEvents(after, entries, last)) {
      feed.mark = ++this.#marks
      this.#sink.gap(feed.name, after)
      // Nothing fetched to go on from: the feed goes on from where the stream stands ('' when it is
      // gone); when Redis did not answer, from the first announcement held (the notice covers the rest).
      if (last === null) feed.last = feed.held?.[0]?.prev ?? after
      else if (entries.length === 0) feed.last = last
    }
    for (const entry of entries) this.#deliver(feed, entry)
    feed.fetched = entries.length > 0 ? new Set(entries.map(entry => entry.id)) : null
    const held = feed.held ?? []
    feed.held = null
    for (let i = 0; i < held.length; i++) {
      const entry = held[i]!
      if (entry.prev !== feed.last) {
        if (i < answered || compareIds(entry.id, feed.last) <= 0) continue
        feed.held = held.slice(i)
        feed.again = true
        return
      }
      this.#deliver(feed, entry)
    }
  }

  #deliver (feed: Feed, entry: Entry): void {
    feed.last = entry.id
    // Where the stream started, made by a position read: what follows names it, it is no event.
    if (isMarker(entry)) return
    feed.mark = ++this.#marks
    try {
      this.#sink.deliver(feed.name, this.#codec.decode(entry.id, entry.body))
    } catch (err) {
      this.#log.warn({ err, channel: feed.name, id: entry.id }, 'sse channel ignored a Redis event it cannot read')
    }
  }
}
