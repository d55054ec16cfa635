// `npm run bench:idle-channels`: 20,000 users (BENCH_CHANNELS) each open their own channel through
// `/notify/:user` over loopback and leave; the heap the server still holds per channel once the
// channels were idle past channelIdleTimeout, against a baseline taken after a warm-up round.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'

const TARGET_BYTES = 20
const run = promisify(execFile)

export interface IdleChannelsResult { channels: number, idleMs: number, bytesPerChannel: number, ms: number }

export async function measureIdleChannels (env: NodeJS.ProcessEnv = process.env): Promise<IdleChannelsResult> {
  const { stdout } = await run(process.execPath,
    ['--import', 'tsx', '--expose-gc', new URL('./idle-channels-server.ts', import.meta.url).pathname],
    { env, timeout: 120_000 })
  return JSON.parse(stdout) as IdleChannelsResult
}

export async function benchIdleChannels (): Promise<boolean> {
  const { channels, idleMs, bytesPerChannel, ms } = await measureIdleChannels()
  const ok = bytesPerChannel < TARGET_BYTES
  console.log(`idle channels: ${channels.toLocaleString('en-US')} users through /notify/:user, each connecting ` +
    `once and leaving (${(channels / ms * 1000).toFixed(0)} per second), channelIdleTimeout ${idleMs} ms`)
  console.log(`  ${ok ? 'PASS' : 'FAIL'} heap left per channel once idle: ${bytesPerChannel.toFixed(1)} bytes ` +
    `(target < ${TARGET_BYTES} bytes)`)
  return ok
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.exitCode = (await benchIdleChannels()) ? 0 : 1
}
