// `npm run bench`: every benchmark, each printing its ratios against a baseline measured in the same run.
// Exits non-zero when a target is missed.
import { benchBroadcast } from './broadcast.js'
import { benchCompress } from './compress.js'
import { benchIdleChannels } from './idle-channels.js'
import { benchStream } from './stream.js'

const results = [await benchStream(), await benchBroadcast(), await benchIdleChannels(), await benchCompress()]
process.exitCode = results.every(Boolean) ? 0 : 1
