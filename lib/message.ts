/** The fields of one SSE event. Every field is optional; `data` that is not a string goes through `serialize`. */
export interface SseMessage<T = unknown> {
  id?: string | number
  event?: string
  data?: T
  /** Reconnection time in ms, sent as a `retry:` line (0 is a valid value). */
  retry?: number
  /** Comment text; every line becomes a `:` line that clients ignore. */
  comment?: string
}

/** The fields of a message: a plain object with only these keys is a message, not data. */
export const MESSAGE_FIELDS: ReadonlySet<string> = new Set(['id', 'event', 'data', 'retry', 'comment'])

/**
 * Whether a yielded value is a message (its fields become lines) rather than data.
 * A plain object qualifies when it has at least one own key and every own key is a message field,
 * so `{ data: 1, id: 2 }` is a message while `{ temperature: 21 }` and `{}` are data.
 */
export function isMessage (value: unknown): value is SseMessage {
  if (value === null || typeof value !== 'object') return false
  const proto = Object.getPrototypeOf(value)
  if (proto !== Object.prototype && proto !== null) return false
  let keys = 0
  for (const key in value) {
    if (!MESSAGE_FIELDS.has(key)) return false
    keys++
  }
  return keys > 0
}
