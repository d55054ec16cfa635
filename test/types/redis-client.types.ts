import Fastify from 'fastify'
import { Cluster, Redis } from 'ioredis'
import ssePlugin, { type SsePluginOptions } from '../../lib/index.js'
import type { SseRedisClient } from '../../lib/channels/redis/client.js'

// A type test, compiled by `tsc --noEmit` in `npm test`, never run. The `redis` option is typed without
// importing ioredis (an optional peer): an ioredis client must still be assignable, without casts.

/** Compiles only if `value` is assignable to T. */
function expectType<T> (value: T): T { return value }

export async function redisClientTypeChecks (): Promise<void> {
  const client = new Redis({ lazyConnect: true })
  expectType<SseRedisClient>(client)
  expectType<SseRedisClient>(client.duplicate())
  expectType<SsePluginOptions>({ redis: client, redisPrefix: 'app:' })
  expectType<SsePluginOptions>({ redis: 'redis://127.0.0.1:6379' })
  const cluster = new Cluster([{ host: '127.0.0.1', port: 7000 }], { lazyConnect: true })
  expectType<SseRedisClient>(cluster)
  expectType<SsePluginOptions>({ redis: cluster })

  const app = Fastify()
  await app.register(ssePlugin, { redis: client })
  // @ts-expect-error an object that is not a Redis client
  await app.register(ssePlugin, { redis: {} })
  // @ts-expect-error a port is not a client nor a URL
  await app.register(ssePlugin, { redis: 6379 })
}
