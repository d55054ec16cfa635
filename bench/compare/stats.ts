// Pure arithmetic for the comparison: percentiles, medians, and the delivery ledger that tells a
// duplicate from a gap. No I/O, so the rules are unit-tested without a server.

/** The value at fraction `p` (0..1) of an ascending array: nearest rank, never interpolated. */
export function percentile (sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN
  const rank = Math.ceil(p * sorted.length) - 1
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank))] as number
}

export function median (values: readonly number[]): number {
  return percentile([...values].sort((a, b) => a - b), 0.5)
}

export interface LatencySummary { p50: number, p99: number, max: number, count: number }

/** p50, p99 and max of the finite values (NaN marks an event never received and is left out). */
export function summarize (values: Float64Array): LatencySummary {
  const finite = new Float64Array(values.length)
  let count = 0
  for (const value of values) if (Number.isFinite(value)) finite[count++] = value
  const sorted = finite.subarray(0, count).sort()
  return { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), max: percentile(sorted, 1), count }
}

/**
 * Which event each client received, so "exactly once" is counted rather than assumed: a second copy of
 * an event is a duplicate, an event a client never got is a gap. One byte per client per event.
 */
export class DeliveryLedger {
  readonly #seen: Uint8Array
  #duplicates = 0
  #unexpected = 0
  #unique = 0

  constructor (readonly clients: number, readonly events: number) {
    this.#seen = new Uint8Array(clients * events)
  }

  /** Records event `seq` at client `client`; false when it was a duplicate or no event of the burst. */
  record (client: number, seq: number): boolean {
    if (!Number.isInteger(seq) || seq < 0 || seq >= this.events) {
      this.#unexpected++
      return false
    }
    const at = client * this.events + seq
    if (this.#seen[at] === 1) {
      this.#duplicates++
      return false
    }
    this.#seen[at] = 1
    this.#unique++
    return true
  }

  get complete (): boolean { return this.#unique === this.clients * this.events }
  get unique (): number { return this.#unique }
  get duplicates (): number { return this.#duplicates }
  /** Events whose sequence number was not one of the burst's (a garbled frame). */
  get unexpected (): number { return this.#unexpected }
  /** Events some client never received. */
  get gaps (): number { return this.clients * this.events - this.#unique }
  /** Clients that missed at least one event. */
  get clientsWithGaps (): number {
    let count = 0
    for (let c = 0; c < this.clients; c++) {
      if (this.#seen.subarray(c * this.events, (c + 1) * this.events).includes(0)) count++
    }
    return count
  }
}
