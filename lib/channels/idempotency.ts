/**
 * The idempotency keys one in-memory channel saw within the window, with the id each publish got.
 * A Map keeps insertion order, which is time order: expired keys are pruned from its front, so the
 * cost is paid by the publishes that add keys, and nothing is kept past the window.
 */
export class IdempotencyKeys {
  readonly #window: number
  readonly #keys = new Map<string, { readonly id: string, readonly at: number }>()

  constructor (windowMs: number) {
    this.#window = windowMs
  }

  /** Keys remembered now (expired ones go when the next publish with a key looks). */
  get size (): number {
    return this.#keys.size
  }

  /** The id a publish with `key` got within the window, if any. */
  idOf (key: string, now: number): string | undefined {
    this.#prune(now)
    return this.#keys.get(key)?.id
  }

  remember (key: string, id: string, now: number): void {
    this.#keys.set(key, { id, at: now })
  }

  #prune (now: number): void {
    for (const [key, { at }] of this.#keys) {
      if (now - at < this.#window) return
      this.#keys.delete(key)
    }
  }
}
