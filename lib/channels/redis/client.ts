// The Redis client the `redis` option takes, as a type only. ioredis is an optional peer: a published
// .d.ts that imported it would fail to compile for every user without it (TS2307). So the client is
// described by what the plugin calls on it, which an ioredis `Redis` and `Cluster` have (test/types/
// proves it), and the Redis backend, the only code that loads ioredis, works with this type alone.

/** A listener as Node's EventEmitter types it (its `removeListener` accepts no narrower type). */
type Listener = (...args: any[]) => void

/**
 * An ioredis client (`new Redis(...)` or `new Cluster(...)`), as far as the plugin uses one: commands
 * on it, and a duplicate of it for pub/sub. At registration the plugin checks that it has `xadd` and
 * `duplicate`.
 */
export interface SseRedisClient {
  /** ioredis's connection state: `'wait'` (lazyConnect), `'connecting'`, `'ready'`, `'end'`... */
  readonly status: string
  /** ioredis's options: the plugin reads `keyPrefix` and `db` (a Cluster's are under `redisOptions`). */
  readonly options?: object
  /** True on an ioredis `Cluster`. */
  readonly isCluster?: boolean
  connect (): Promise<void>
  disconnect (): void
  quit (): Promise<unknown>
  duplicate (...args: any[]): SseRedisClient
  defineCommand (name: string, definition: { numberOfKeys: number, lua: string }): void
  subscribe (...channels: string[]): Promise<unknown>
  unsubscribe (...channels: string[]): Promise<unknown>
  on (event: string, listener: Listener): this
  once (event: string, listener: Listener): this
  removeListener (event: string, listener: Listener): this
}

/** ioredis's shape: anything else given as a client is a mistake. */
export function isRedisClient (value: unknown): value is SseRedisClient {
  if (typeof value !== 'object' || value === null) return false
  const client = value as Record<string, unknown>
  return typeof client.xadd === 'function' && typeof client.duplicate === 'function'
}

/** A `redis://` or `rediss://` URL, which the plugin connects (and quits) itself. */
export function isRedisUrl (value: unknown): value is string {
  return typeof value === 'string' && /^rediss?:\/\//.test(value)
}
