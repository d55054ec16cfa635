import { describe } from '../describe.js'
import { FST_SSE_INVALID_CHANNEL, FST_SSE_INVALID_STREAM_KEY } from '../errors.js'

// A resumable stream's key, and the channel it is kept in: names the app's own channels may not take.

const MAX_KEY_LENGTH = 150
/** The names of the channels of resumable streams: the app's own channels may not take them. */
export const RESERVED_PREFIX = 'sse-resumable'
/** Every app running generations listens here for cancellations of the ones it runs. */
export const CONTROL = RESERVED_PREFIX + '-control'

export function channelOf (key: string): string {
  return RESERVED_PREFIX + ':' + key
}

/** A name the app asks for: never one of the resumable streams' (one could publish into a generation, or cancel it). */
export function checkAppChannel (name: string): string {
  if (typeof name === 'string' && name.startsWith(RESERVED_PREFIX)) {
    throw new FST_SSE_INVALID_CHANNEL(`${describe(name)}: names starting with ${RESERVED_PREFIX} are the plugin's own`)
  }
  return name
}

export function isKey (key: unknown): key is string {
  return typeof key === 'string' && key !== '' && key.length <= MAX_KEY_LENGTH
}

export function checkKey (key: unknown): asserts key is string {
  if (!isKey(key)) throw new FST_SSE_INVALID_STREAM_KEY(describe(key))
}
