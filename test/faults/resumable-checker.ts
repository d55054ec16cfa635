import { GAP_EVENT, type Phase } from './checker.js'
import { END_EVENT, type ReaderRecord } from './generations.js'

// The verdict on resumable streams under faults, from records alone (no I/O): what each generation
// yielded and knows was published, and what each of its readers received. Tokens carry their number
// in their data ({"n":k}) and are published in order, so what was published is a prefix: every token
// up to the highest one the generation knows was published, or any reader received.

export interface GenerationRecord {
  readonly key: string
  readonly startedAt: number
  /** The highest token yielded (-1: none). */
  readonly yielded: number
  /** The highest token whose publish resolved (-1: none). */
  readonly confirmed: number
  readonly readers: readonly ReaderRecord[]
}

export interface Rules {
  /** How long after its start every reader of a generation must have stopped (end received, 204 had). */
  readonly boundMs: number
  /** The end reasons a reader may receive. */
  readonly reasons: readonly string[]
}

export const RESUMABLE_PROBLEMS = ['duplicates', 'outOfOrder', 'unknownTokens', 'copies', 'unexplainedLosses',
  'unexpectedGaps', 'unexpectedEvents', 'noEnd', 'badReasons', 'mixedReasons', 'late', 'not204'] as const
export type ResumableProblem = typeof RESUMABLE_PROBLEMS[number]

export interface ResumableVerdict {
  readonly generations: number
  readonly readers: number
  /** Tokens received, every copy counted. */
  readonly delivered: number
  readonly counts: Record<ResumableProblem, number>
  readonly examples: Record<ResumableProblem, string[]>
  /** Each generation's end reason (the one its readers agree on; `lost` when that is all they got), by the phase it ended in. */
  readonly reasonsByPhase: Map<string, Map<string, number>>
  /** Ends received, by reason, every reader counted. */
  readonly readerReasons: Map<string, number>
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

function tokenOf (data: string): number | undefined {
  try {
    const n: unknown = (JSON.parse(data) as { n?: unknown }).n
    return Number.isSafeInteger(n) ? n as number : undefined
  } catch {
    return undefined
  }
}

function count (map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1)
}

export function checkGenerations (generations: readonly GenerationRecord[], phases: readonly Phase[], rules: Rules): ResumableVerdict {
  const counts = Object.fromEntries(RESUMABLE_PROBLEMS.map(problem => [problem, 0])) as Record<ResumableProblem, number>
  const examples = Object.fromEntries(RESUMABLE_PROBLEMS.map(problem => [problem, []])) as unknown as Record<ResumableProblem, string[]>
  const note = (problem: ResumableProblem, example: () => string): void => {
    counts[problem]++
    if (examples[problem].length < EXAMPLES) examples[problem].push(example())
  }
  const reasonsByPhase = new Map<string, Map<string, number>>()
  const readerReasons = new Map<string, number>()
  let delivered = 0
  let readers = 0

  for (const generation of generations) {
    const { key } = generation
    // The id each token was received under: a token under two ids was stored twice.
    const idOf = new Map<number, string>()
    let published = generation.confirmed
    for (const reader of generation.readers) {
      for (const event of reader.received) {
        const n = event.event === 'token' ? tokenOf(event.data) : undefined
        if (n !== undefined && n <= generation.yielded) published = Math.max(published, n)
      }
    }
    const ends = new Map<string, number>()
    let firstEnd: number | undefined
    for (const reader of generation.readers) {
      readers++
      const who = `${reader.name} of ${key}`
      /** The last token received in order; -1 before the first. */
      let last = -1
      /** A gap notice just received: the tokens it skips are not counted twice. */
      let covered = false
      let ended = false
      const lose = (from: number, to: number): void => {
        for (let n = from; n < to; n++) {
          if (!covered) note('unexplainedLosses', () => `${who} never received token ${n}`)
        }
      }
      for (const event of reader.received) {
        if (ended) {
          note('unexpectedEvents', () => `${who} got ${event.event} after its end`)
          continue
        }
        if (event.event === END_EVENT) {
          ended = true
          continue
        }
        if (event.event === GAP_EVENT) {
          note('unexpectedGaps', () => `${who} got a gap notice after token ${last} (${event.data})`)
          covered = true
          continue
        }
        const n = event.event === 'token' ? tokenOf(event.data) : undefined
        if (n === undefined) {
          note('unexpectedEvents', () => `${who} got an event named ${JSON.stringify(event.event)}: ${event.data.slice(0, 80)}`)
          continue
        }
        delivered++
        if (n > generation.yielded) note('unknownTokens', () => `${who} got token ${n}, but only ${generation.yielded} was yielded`)
        const id = idOf.get(n)
        if (id === undefined) idOf.set(n, event.id)
        else if (id !== event.id) note('copies', () => `${who} got token ${n} as ${event.id}, another reader as ${id}`)
        if (n === last) {
          note('duplicates', () => `${who} got token ${n} again`)
          continue
        }
        if (n < last) {
          note('outOfOrder', () => `${who} got token ${n} after ${last}`)
          continue
        }
        lose(last + 1, n)
        covered = false
        last = n
      }
      const { end } = reader
      if (end === undefined) {
        note('noEnd', () => reader.stoppedWithoutEnd
          ? `${who} was told to stop (204) after token ${last} without an end`
          : `${who} never received an end (last token ${last})`)
      } else {
        count(readerReasons, end.reason)
        count(ends, end.reason)
        firstEnd = Math.min(firstEnd ?? end.at, end.at)
        if (!rules.reasons.includes(end.reason)) note('badReasons', () => `${who} ended with reason ${end.reason}`)
        // A reader with the end has the whole stream; one that gave up (lost) has what came until then.
        if (end.reason !== 'lost') lose(last + 1, published + 1)
        if (reader.statusAfterEnd !== 204) {
          note('not204', () => `${who}, resuming with its end's id ${end.id}, was answered ${reader.statusAfterEnd ?? 'never'}`)
        }
      }
      if (reader.finishedAt === undefined || reader.finishedAt - generation.startedAt > rules.boundMs) {
        note('late', () => `${who} ${reader.finishedAt === undefined
          ? 'never stopped'
          : `stopped ${reader.finishedAt - generation.startedAt} ms after the start`} (bound ${rules.boundMs} ms)`)
      }
    }
    const agreed = [...ends.keys()].filter(reason => reason !== 'lost')
    if (agreed.length > 1) note('mixedReasons', () => `the readers of ${key} got different ends: ${[...ends].map(([r, c]) => `${r} x${c}`).join(', ')}`)
    if (firstEnd !== undefined) {
      const phase = phaseAt(phases, firstEnd)
      const byReason = reasonsByPhase.get(phase) ?? new Map<string, number>()
      count(byReason, agreed[0] ?? 'lost')
      reasonsByPhase.set(phase, byReason)
    }
  }
  return { generations: generations.length, readers, delivered, counts, examples, reasonsByPhase, readerReasons }
}

/** One line with every count, for the test's output. */
export function resumableSummary (verdict: ResumableVerdict): string {
  const problems = RESUMABLE_PROBLEMS.map(problem => `${problem} ${verdict.counts[problem]}`).join(', ')
  return `${verdict.generations} generations, ${verdict.readers} readers, ${verdict.delivered} tokens delivered; ${problems}`
}
