import t from 'tap'
import { RedisNames } from '../../../lib/channels/redis/names.js'
import type { SseRedisClient } from '../../../lib/channels/redis/client.js'

// Every Redis name of a channel: one hash tag per channel (a Cluster keeps them in one slot), the
// pub/sub name as Redis sees it (ioredis prefixes keys and shard channels, not SUBSCRIBE's).

const client = (options?: object): SseRedisClient => ({ options }) as unknown as SseRedisClient

t.test('keys carry the prefix and the hash tag {channel}; ioredis adds its keyPrefix to them itself', async t => {
  const names = new RedisNames('sse:', client({ keyPrefix: 'app:', db: 3 }))
  t.equal(names.stream('news'), 'sse:{news}')
  t.equal(names.idempotency('news', 'k-1'), 'sse:{news}:idempotency:k-1')
})

t.test('the pub/sub channel is named in full: keyPrefix, prefix, tag, database', async t => {
  t.equal(new RedisNames('sse:', client({ keyPrefix: 'app:', db: 3 })).announcement('news'), 'app:sse:{news}@3')
  t.equal(new RedisNames('sse:', client({})).announcement('news'), 'sse:{news}@0', 'db 0 and no keyPrefix by default')
  t.equal(new RedisNames('sse:', client()).announcement('news'), 'sse:{news}@0', 'a client without options')
  t.equal(new RedisNames('sse:', client({ keyPrefix: Buffer.from('x') })).announcement('news'), 'sse:{news}@0',
    'a keyPrefix that is not a string is not guessed at')
})

t.test('a shard channel is given to ioredis without its keyPrefix, which ioredis adds back', async t => {
  const names = new RedisNames('sse:', client({ keyPrefix: 'app:' }))
  t.equal(names.sharded(names.announcement('news')), 'sse:{news}@0')
})

t.test('two apps on two databases never share a pub/sub channel; two channels never share a tag', async t => {
  const a = new RedisNames('sse:', client({ db: 14 }))
  const b = new RedisNames('sse:', client({ db: 15 }))
  t.not(a.announcement('news'), b.announcement('news'))
})

t.test('braces in a name are escaped: one tag per name, and no two channels share a key', async t => {
  const names = new RedisNames('sse:', client({}))
  t.equal(names.stream('}a{b%'), 'sse:{%7Da%7Bb%25}')
  t.not(names.idempotency('orders', 'x}:idempotency:pay-7'), names.idempotency('orders}:idempotency:x', 'pay-7'))
  t.not(names.stream('pay}:idempotency:k'), names.idempotency('pay', 'k}'))
  t.not(names.stream('%7D'), names.stream('}'), 'the escape is itself escaped')
})
