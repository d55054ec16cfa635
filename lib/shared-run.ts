import { preparedBytes } from './frame.js'

/**
 * The bytes of a run of prepared messages (several events waiting for one stream), built once for
 * every stream of the app that writes the same run. In a broadcast every subscriber of a channel has
 * the same events waiting when its flush comes: joined per stream, 5,000 streams made 5,000 copies of
 * the same bytes (and the string work to build them); joined once, every socket writes one Buffer.
 *
 * Only the run built last is kept: a flush round writes one stream after the other, so the streams
 * that share a run come one after the other. Runs are compared message by message (by identity), so
 * two streams whose runs differ anywhere (a gap notice one of them skipped) never share bytes.
 */
export class SharedRuns {
  #messages: readonly unknown[] = []
  #bytes: Buffer | null = null

  /** The bytes of `messages` (each of them prepared), one after the other. */
  bytesOf (messages: readonly unknown[]): Buffer {
    if (this.#bytes === null || !sameRun(this.#messages, messages)) {
      this.#messages = messages.slice()
      this.#bytes = joined(messages)
    }
    return this.#bytes
  }
}

/** In memory of its own (not a slice of Node's shared pool): a socket that holds it holds nothing else. */
function joined (messages: readonly unknown[]): Buffer {
  const parts = messages.map(message => preparedBytes(message) as Buffer)
  let length = 0
  for (const part of parts) length += part.length
  const bytes = Buffer.allocUnsafeSlow(length)
  let at = 0
  for (const part of parts) at += part.copy(bytes, at)
  return bytes
}

function sameRun (a: readonly unknown[], b: readonly unknown[]): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}
