import t from 'tap'
import { measureIdleChannels } from '../../bench/idle-channels.js'

// Issue 8, item 7: an app that names channels after a URL parameter (per-user notifications) kept
// 0.3-0.65 KB of heap per name for the life of the process, and any client could add names.
// Measured in a server process of its own (bench/idle-channels-server.ts), with its clients in
// another: this test process (its own allocations, tap's) would drown a few bytes per channel.

/**
 * Heap a forgotten channel may still cost, on average: measurement noise (seen from -24 to +21 bytes
 * on a loaded machine), a tenth of the 448-482 bytes one cost before, never a channel's worth.
 */
const MARGIN_PER_CHANNEL = 48

t.test('20,000 channels named from a URL parameter, each left by its client, are forgotten once idle: the heap returns to its baseline', async t => {
  const { channels, bytesPerChannel } = await measureIdleChannels({ ...process.env, BENCH_CHANNELS: '20000' })
  t.equal(channels, 20_000)
  t.ok(bytesPerChannel < MARGIN_PER_CHANNEL, `${bytesPerChannel.toFixed(1)} bytes of heap left per forgotten channel`)
})
