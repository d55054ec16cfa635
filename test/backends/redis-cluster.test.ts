import t from 'tap'
import { randomUUID } from 'node:crypto'
import { buildApp } from '../fixtures/app.js'
import { startCluster } from '../fixtures/redis-cluster.js'
import { channelContract } from './contract.js'

// The channel contract through a real Redis Cluster (issue 8): three masters of this file's own (a
// start takes seconds), an ioredis Cluster client per test, each test under a key prefix of its own.
// No key cleanup: the cluster and its data go when the file ends.

const cluster = await startCluster(t)
if (cluster !== undefined) {
  channelContract(t, async (t, options) => {
    // Its teardown runs after the app's (tap runs teardowns last first): the plugin never closes a client it was given.
    const client = await cluster.client(t)
    return buildApp(t, { redis: client, redisPrefix: `sse-test:${randomUUID()}:`, ...options })
  })
}
