import type { LogLine } from '../fixtures/logs.js'

const EXAMPLES = 10

/**
 * A pino destination (`logger: { stream }`) that keeps only the first few warning and error lines
 * `expected` does not accept, and counts them: a soak's tens of thousands of lines, kept, would fill
 * the heap it measures.
 */
export class LogTally {
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
      if (line.level < 40 || this.#expected(line)) continue
      this.unexpectedCount++
      if (this.unexpected.length < EXAMPLES) this.unexpected.push(line)
    }
  }
}
