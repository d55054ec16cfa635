import type { SseRedisClient } from './client.js'

/**
 * The Redis names of a channel. Every key of one channel carries the hash tag `{<channel>}`, so a
 * Redis Cluster keeps them in one slot and one script can touch them all; the pub/sub channel carries
 * it too, as sharded pub/sub requires. Keys are given to ioredis, which adds its `keyPrefix`; the
 * pub/sub channel is named in full (ioredis does not prefix it), with the database number, because
 * Redis pub/sub ignores databases: apps on db 14 and db 15 of one server must not hear each other.
 */
export class RedisNames {
  readonly #prefix: string
  readonly #keyPrefix: string
  readonly #announcementPrefix: string
  readonly #announcementSuffix: string

  constructor (prefix: string, client: SseRedisClient) {
    const { keyPrefix, db } = (client.options ?? {}) as { keyPrefix?: unknown, db?: unknown }
    this.#prefix = prefix
    this.#keyPrefix = typeof keyPrefix === 'string' ? keyPrefix : ''
    this.#announcementPrefix = this.#keyPrefix + prefix
    this.#announcementSuffix = '@' + (typeof db === 'number' ? db : 0)
  }

  /** The stream holding the channel's history, as ioredis is given it. */
  stream (channel: string): string {
    return this.#prefix + tagOf(channel)
  }

  /** Where the id of the publish with `key` is remembered, as ioredis is given it. */
  idempotency (channel: string, key: string): string {
    return this.#prefix + tagOf(channel) + ':idempotency:' + key
  }

  /** The small record kept about a channel (a resumable stream's start and end), as ioredis is given it. */
  record (channel: string): string {
    return this.#prefix + tagOf(channel) + ':record'
  }

  /** A pub/sub channel as ioredis is given it for sharded pub/sub, which it prefixes (unlike SUBSCRIBE). */
  sharded (announcement: string): string {
    return announcement.slice(this.#keyPrefix.length)
  }

  /** Where one publish call marks that it ran: a copy ioredis sends again after a reconnect stores nothing. */
  attempt (channel: string, token: string): string {
    return this.#prefix + tagOf(channel) + ':attempt:' + token
  }

  /** The pub/sub channel announcing the channel's events, as Redis names it. */
  announcement (channel: string): string {
    return this.#announcementPrefix + tagOf(channel) + this.#announcementSuffix
  }
}

/**
 * `{<name>}` with `%`, `{` and `}` escaped: a brace in a name would end the hash tag early (a name
 * starting with `}` would put its keys in different Cluster slots) and let `a}:idempotency:x` and
 * `a` share keys. Escaped, every name has a tag of its own.
 */
function tagOf (channel: string): string {
  return '{' + channel.replace(/[%{}]/g, escape) + '}'
}

function escape (char: string): string {
  return char === '%' ? '%25' : char === '{' ? '%7B' : '%7D'
}
