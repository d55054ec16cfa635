import t from 'tap'
import { buildApp } from '../fixtures/app.js'
import { REDIS_URL, redisAvailable, uniquePrefix } from '../fixtures/redis.js'
import { channelContract } from './contract.js'

// The channel contract through Redis (each test under a key prefix of its own), then what only Redis does.
if (await redisAvailable(t)) {
  channelContract(t, (t, options) => buildApp(t, { redis: REDIS_URL, redisPrefix: uniquePrefix(t), ...options }))
}
