import type { LogLine } from '../fixtures/logs.js'

const EXAMPLES = 10

/**
 * A pino destination (`logger: { stream }`) that counts stream ends by reason and keeps only the first
 * few warning and error lines `expected` does not accept: a soak's tens of thousands of lines, kept,
 * would fill the heap it measures.
 */
export class LogTally {
  readonly ends: Record<string, number> = {}
  readonly unexpected: LogLine[] = []
  unexpectedCount = 0
  readonly #expected: (line: LogLine) => boolean

  constructor (expected: (line: LogLine) => boolean) {
    this.#expected = expected
  }

  write (chunk: string): void {
    for (const text of chunk.split('\n')) {
      if (text === '') continue
      const line = JSON.parse(text) as LogLine
      if (line.msg === 'sse stream ended') this.ends[String(line.reason)] = (this.ends[String(line.reason)] ?? 0) + 1
      if (line.level < 40 || this.#expected(line)) continue
      this.unexpectedCount++
      if (this.unexpected.length < EXAMPLES) this.unexpected.push(line)
    }
  }
}
