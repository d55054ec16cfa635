// The verdict of the fault-injection suite, from records alone (no I/O): what the producer published
// (the id each event's publish resolved to, in publish order) and what each client received. Every
// published event carries the producer's sequence number in its data ({"seq":n}), so publish order
// is known independently of the ids the channel gave.

export const GAP_EVENT = 'sse-gap'
/** What opens a multiplexed stream: its id is where the stream starts in each channel. */
export const CURSOR_EVENT = 'sse-cursor'

/** One event as a client's EventSource dispatched it. */
export interface Received {
  readonly id: string
  readonly event: string
  readonly data: string
  /** Date.now() when it arrived. */
  readonly at: number
}

export interface ClientRecord {
  readonly name: string
  readonly received: readonly Received[]
}

/**
 * Redis lost its data (a restart without persistence): events published before `at` are gone from
 * the history; `firstSeq` is the first event acknowledged by the Redis that came back.
 */
export interface Wipe {
  readonly at: number
  readonly firstSeq: number
}

/** What happened when: a finding is told with the phase it happened in. */
export interface Phase {
  readonly at: number
  readonly name: string
}

export interface Published {
  /** The id each event's publish resolved to, by sequence number (publish order). */
  readonly ids: readonly string[]
  /** When each publish resolved (Date.now()), by sequence number. */
  readonly at: readonly number[]
}

export const PROBLEMS = ['duplicates', 'outOfOrder', 'unknownIds', 'unexplainedLosses', 'unexpectedGaps',
  'wrongGapIds', 'unexpectedEvents', 'silentClients'] as const
export type Problem = typeof PROBLEMS[number]

export interface Verdict {
  readonly published: number
  /** Events received, every copy counted. */
  readonly delivered: number
  /** Gap notices received. */
  readonly gaps: number
  /** Events a client did not receive because a gap notice told it they were gone. */
  readonly gapped: number
  /** How many times each problem was seen (all should be 0). */
  readonly counts: Record<Problem, number>
  /** Each problem by the phase it happened in (the publish of the event concerned, or the arrival of the notice). */
  readonly byPhase: Record<Problem, Record<string, number>>
  /** The first few of each problem, in words. */
  readonly examples: Record<Problem, string[]>
}

const EXAMPLES = 5

function phaseAt (phases: readonly Phase[], at: number): string {
  let name = 'before any phase'
  for (const phase of phases) {
    if (phase.at > at) break
    name = phase.name
  }
  return name
}

/** Whether the id `a` comes before `b` (both `<ms>-<seq>`). */
function before (a: string, b: string): boolean {
  const [msA = NaN, seqA = NaN] = a.split('-').map(Number)
  const [msB = NaN, seqB = NaN] = b.split('-').map(Number)
  return msA < msB || (msA === msB && seqA < seqB)
}

function seqOf (data: string): number | undefined {
  try {
    const seq: unknown = (JSON.parse(data) as { seq?: unknown }).seq
    return Number.isSafeInteger(seq) ? seq as number : undefined
  } catch {
    return undefined
  }
}

/**
 * Per client: every event received is one that was published (its id is the one its publish resolved
 * to), in publish order, once; from its first event on, every published event reaches it unless a gap
 * notice covers it (a notice with lastEventId L followed by event N covers the events between L and
 * N); and a notice comes only where history was really lost: after a wipe, for an id from before it.
 * A multiplexed stream's cursor (CURSOR_EVENT, before any event) moves "from its first event" back to
 * the position it gave: every event after that one is owed.
 */
export function check (published: Published, clients: readonly ClientRecord[], wipes: readonly Wipe[],
  phases: readonly Phase[]): Verdict {
  const seqById = new Map(published.ids.map((id, seq) => [id, seq]))
  const counts = Object.fromEntries(PROBLEMS.map(problem => [problem, 0])) as Record<Problem, number>
  const byPhase = Object.fromEntries(PROBLEMS.map(problem => [problem, {}])) as Record<Problem, Record<string, number>>
  const examples = Object.fromEntries(PROBLEMS.map(problem => [problem, []])) as unknown as Record<Problem, string[]>
  const note = (problem: Problem, at: number, example: () => string): void => {
    counts[problem]++
    const phase = phaseAt(phases, at)
    byPhase[problem][phase] = (byPhase[problem][phase] ?? 0) + 1
    if (examples[problem].length < EXAMPLES) examples[problem].push(`${example()} (${phase})`)
  }
  /** When an event was published, or (never published) when it was received. */
  const publishedAt = (seq: number | undefined, fallback: number): number =>
    seq === undefined ? fallback : published.at[seq] ?? fallback
  let delivered = 0
  let gaps = 0
  let gapped = 0

  for (const { name, received } of clients) {
    const seen = new Set<number>()
    /** The sequence number of the last event received in order; -1 before the first. */
    let last = -1
    let lastId: string | undefined
    /**
     * What the gap notice just received covers: the events after the one it says the client had (-1:
     * an unknown id), and before the first one the Redis that came back acknowledged (those are kept:
     * they must still arrive). A notice with no wipe behind it, counted already, covers up to the next
     * event. Null: no notice pending.
     */
    let cover: { from: number, until: number } | null = null
    /** The sequence number a cursor placed the client at, before its first event; null: none. */
    let anchor: number | null = null
    const lose = (from: number, to: number): void => {
      for (let seq = from; seq < to; seq++) {
        if (cover !== null && seq > cover.from && seq < cover.until) gapped++
        else note('unexplainedLosses', publishedAt(seq, 0), () => `${name} never received #${seq} (${published.ids[seq]})`)
      }
    }
    for (const event of received) {
      if (event.event === CURSOR_EVENT) {
        // Only the first one places the client: later ones repeat the position its id gave back.
        if (last >= 0 || anchor !== null) continue
        const seq = seqById.get(event.id)
        if (seq !== undefined) {
          anchor = seq
        } else if (published.ids.length === 0 || before(event.id, published.ids[0]!)) {
          anchor = -1
        } else {
          note('unknownIds', event.at, () => `${name} was placed at ${event.id}, which no publish resolved to`)
          continue
        }
        lastId = event.id
        continue
      }
      if (event.event === GAP_EVENT) {
        gaps++
        let said: unknown
        try {
          said = (JSON.parse(event.data) as { lastEventId?: unknown }).lastEventId
        } catch {}
        if (said !== lastId || event.id !== lastId) {
          note('wrongGapIds', event.at, () => `${name} had ${lastId}, got a gap notice with id ${event.id} and data ${event.data}`)
        }
        const from = typeof said === 'string' ? seqById.get(said) : undefined
        const behind = wipes.filter(wipe => event.at >= wipe.at && from !== undefined && from < wipe.firstSeq)
        if (behind.length === 0) {
          note('unexpectedGaps', event.at, () => `${name} got a gap notice after #${from ?? '?'} (${String(said)}) with no lost history behind it`)
        }
        cover = { from: from ?? -1, until: behind.length === 0 ? Infinity : Math.max(...behind.map(wipe => wipe.firstSeq)) }
        lastId = event.id
        continue
      }
      if (event.event !== 'tick') {
        note('unexpectedEvents', event.at, () => `${name} got an event named ${JSON.stringify(event.event)}: ${event.data.slice(0, 80)}`)
        continue
      }
      delivered++
      lastId = event.id
      const seq = seqOf(event.data)
      if (seq === undefined || published.ids[seq] !== event.id) {
        note('unknownIds', publishedAt(seq, event.at), () => seq === undefined
          ? `${name} got ${event.id} with data ${event.data.slice(0, 80)}`
          : `${name} got #${seq} with id ${event.id}, but its publish resolved to ${published.ids[seq] ?? 'nothing'}`)
        if (seq === undefined) continue
      }
      if (seen.has(seq)) {
        note('duplicates', publishedAt(seq, event.at), () => `${name} got #${seq} again (as ${event.id})`)
        continue
      }
      seen.add(seq)
      if (seq < last || (last < 0 && anchor !== null && seq <= anchor)) {
        note('outOfOrder', publishedAt(seq, event.at), () => `${name} got #${seq} after #${last < 0 ? anchor! : last}`)
        continue
      }
      if (last >= 0) lose(last + 1, seq)
      else if (anchor !== null) lose(anchor + 1, seq)
      cover = null
      last = seq
    }
    if (last < 0 && anchor === null) {
      note('silentClients', 0, () => `${name} received no event at all`)
      continue
    }
    // The run ends once every client has caught up: what it still lacks is lost.
    lose(Math.max(last, anchor ?? -1) + 1, published.ids.length)
  }
  return { published: published.ids.length, delivered, gaps, gapped, counts, byPhase, examples }
}

/**
 * A client of a multiplexed stream, seen as one client per channel, so each channel is held to the
 * rules of a stream of its own: its events (`<channel>.tick`, `<channel>.sse-gap`) renamed as a
 * stream of one channel names them (an unnamed `<channel>` event becomes `message`, which no
 * publish makes), each id the channel's position in the cursor (`name=id&name=id`, read here with
 * URLSearchParams, independently of the library's decoder). An event of none of `channels` is kept
 * in the first channel's record, where it is reported as unexpected.
 */
export function channelRecords (client: ClientRecord, channels: readonly string[]): ClientRecord[] {
  const records = new Map(channels.map(channel => [channel, [] as Received[]]))
  for (const event of client.received) {
    if (event.event === CURSOR_EVENT) {
      const cursor = new URLSearchParams(event.id)
      for (const [channel, record] of records) {
        const position = cursor.get(channel)
        if (position !== null) record.push({ ...event, id: position })
      }
      continue
    }
    const dot = event.event.indexOf('.')
    const channel = dot === -1 ? event.event : event.event.slice(0, dot)
    const record = records.get(channel)
    if (record === undefined) {
      records.get(channels[0]!)!.push(event)
      continue
    }
    const id = new URLSearchParams(event.id).get(channel) ?? ''
    record.push({ ...event, id, event: dot === -1 ? 'message' : event.event.slice(dot + 1) })
  }
  return channels.map(channel => ({ name: `${client.name} ${channel}`, received: records.get(channel)! }))
}

/** One line with every count, for the test's output. */
export function summary (verdict: Verdict): string {
  const { counts } = verdict
  return `published ${verdict.published}, delivered ${verdict.delivered}, gaps ${verdict.gaps} ` +
    `(covering ${verdict.gapped} events), duplicates ${counts.duplicates}, unexplained losses ${counts.unexplainedLosses}, ` +
    `out-of-order ${counts.outOfOrder}, unknown ids ${counts.unknownIds}, unexpected gaps ${counts.unexpectedGaps}, ` +
    `wrong gap ids ${counts.wrongGapIds}, unexpected events ${counts.unexpectedEvents}, silent clients ${counts.silentClients}`
}
