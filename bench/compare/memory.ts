// Memory readings of the process that imports this: the resident peak (Linux's VmHWM, reset by
// writing 5 to /proc/self/clear_refs) and the heap after garbage collection.
import { readFileSync, writeFileSync } from 'node:fs'
import { getHeapSpaceStatistics } from 'node:v8'
import { setTimeout as sleep } from 'node:timers/promises'

/** Sets the resident peak to the current resident size, so the next peakRss() is the peak since now. */
export function resetPeakRss (): void {
  writeFileSync('/proc/self/clear_refs', '5')
}

/** The resident peak in bytes since the process started or since the last resetPeakRss(). */
export function peakRss (): number {
  const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))
  if (match === null) throw new Error('no VmHWM in /proc/self/status')
  return Number(match[1]) * 1024
}

/** Heap used by objects after two full collections. Compiled code is left out: it grows as V8 optimizes. */
export async function collectedHeap (): Promise<{ heap: number, rss: number }> {
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc === undefined) throw new Error('run with --expose-gc')
  gc()
  await sleep(100)
  gc()
  const heap = getHeapSpaceStatistics().filter(space => !space.space_name.startsWith('code_'))
    .reduce((sum, space) => sum + space.space_used_size, 0)
  return { heap, rss: process.memoryUsage.rss() }
}
