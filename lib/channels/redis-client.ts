// The Redis client the `redis` option takes, as a type only. ioredis is an optional peer: a published
// .d.ts that imported it would fail to compile for every user without it (TS2307). So the client is
// described by what the plugin calls on it, which an ioredis `Redis` has (test/types/ proves it), and
// the Redis backend, the only module that loads ioredis, works with this type alone.

/** A listener as Node's EventEmitter types it (its `removeListener` accepts no narrower type). */
type Listener = (...args: any[]) => void

/**
 * An ioredis client (`new Redis(...)`), as far as the plugin uses one: commands on it, and a
 * duplicate of it for pub/sub. At registration the plugin checks that it has `xadd` and `duplicate`.
 */
export interface SseRedisClient {
  /** ioredis's connection state: `'wait'` (lazyConnect), `'connecting'`, `'ready'`, `'end'`... */
  readonly status: string
  connect (): Promise<void>
  disconnect (): void
  quit (): Promise<unknown>
  duplicate (override?: { lazyConnect?: boolean, connectionName?: string }): SseRedisClient
  defineCommand (name: string, definition: { numberOfKeys: number, lua: string }): void
  subscribe (...channels: string[]): Promise<unknown>
  unsubscribe (...channels: string[]): Promise<unknown>
  ping (): Promise<unknown>
  on (event: string, listener: Listener): this
  once (event: string, listener: Listener): this
  removeListener (event: string, listener: Listener): this
}
