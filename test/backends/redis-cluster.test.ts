import t from 'tap'
import { randomUUID } from 'node:crypto'
import { GAP_EVENT } from '../../lib/index.js'
import { buildApp } from '../fixtures/app.js'
import { read } from '../fixtures/channels.js'
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

if (cluster !== undefined) {
  // After the contract: these move slots and restart masters under the cluster every test above shared.
  const keySlot = async (key: string): Promise<number> => {
    const node = cluster.nodeClient(0)
    try {
      return await node.cluster('KEYSLOT', key) as number
    } finally {
      node.disconnect()
    }
  }

  /** Publish until it is accepted (a cluster repairing itself refuses for a moment), bounded. */
  async function publishSoon (publish: () => Promise<string>, timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      try {
        return await publish()
      } catch (err) {
        if (Date.now() > deadline) throw err
        await new Promise(resolve => setTimeout(resolve, 100))
      }
    }
  }

  t.test('a channel whose slot moves to another master: live subscribers get every event published meanwhile, late, in order', async t => {
    const prefix = `sse-test:${randomUUID()}:`
    const { app } = await buildApp(t, { redis: await cluster.client(t), redisPrefix: prefix })
    const channel = app.sse.channel('moving')
    const reader = read(channel.subscribe())
    const before = await channel.publish('before')
    t.same((await reader.take(1)).map(message => message.id), [before])
    await cluster.moveSlot(await keySlot(`${prefix}{moving}`), 1)
    // The subscription follows the slot at ioredis's next slots refresh; the next announcement after
    // that shows the hole, and the feed fetches what it missed from the stream.
    const published: string[] = []
    const first = reader.take(1, 20_000)
    let received: Array<{ id: string }> = []
    const publishing = (async () => {
      while (received.length === 0 && published.length < 100) {
        published.push(await publishSoon(() => channel.publish(`after ${published.length}`), 10_000))
        await new Promise(resolve => setTimeout(resolve, 200))
      }
    })()
    received = await first
    await publishing
    const rest = await reader.take(published.length - 1, 10_000)
    t.same([...received, ...rest].map(message => message.id), published, 'every one, once, in order, no gap')
  })

  t.test('after a master restarts, the app publishes again on every channel, and subscribers get what follows', async t => {
    const prefix = `sse-test:${randomUUID()}:`
    const { app } = await buildApp(t, { redis: await cluster.client(t), redisPrefix: prefix })
    const names = Array.from({ length: 6 }, (_v, i) => `restart-${i}`)
    const readers = names.map(name => read(app.sse.channel(name).subscribe()))
    await Promise.all(names.map(name => app.sse.channel(name).publish('before')))
    await Promise.all(readers.map(reader => reader.take(1)))
    await cluster.killNode(0)
    await cluster.restartNode(0)
    await cluster.healthy()
    const ids = await Promise.all(names.map(name => publishSoon(() => app.sse.channel(name).publish('after'), 15_000)))
    for (const [i, reader] of readers.entries()) {
      const received = await reader.take(1, 15_000)
      const last = received[received.length - 1]!
      // A channel of the restarted master lost its history: a gap notice may come first.
      const next = last.event === GAP_EVENT ? (await reader.take(1, 15_000))[0]! : last
      t.equal(next.id, ids[i], names[i]!)
    }
  })
}
