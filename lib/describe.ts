/** Characters of a string kept in an error message before it is cut short. */
const MAX_SHOWN = 40

/**
 * A value as error messages show it: strings quoted and cut short (they may come from a client, and
 * a message must never echo a 15 KB header), other primitives as written, anything else by its type.
 */
export function describe (value: unknown, maxShown = MAX_SHOWN): string {
  if (typeof value === 'string') {
    return JSON.stringify(value.length > maxShown ? value.slice(0, maxShown) + '...' : value)
  }
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint' || value == null) {
    return String(value)
  }
  return typeof value
}
