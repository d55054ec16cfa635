// A server process: builds one system (argv[2], a module under systems/), listens on loopback and
// answers the orchestrator's commands over IPC. Run with --expose-gc.
import type { ServerCommand, ServerMessage } from './protocol.js'
import { collectedHeap, peakRss, resetPeakRss } from './memory.js'
import { epoch, Sources, type BuildSystem } from './system.js'

const key = process.argv[2]
if (key === undefined || !/^[a-z0-9-]+$/.test(key)) throw new Error('usage: server.ts <system>')
const send = (message: ServerMessage): void => { process.send?.(message) }

const { default: build } = await import(`./systems/${key}.js`) as { default: BuildSystem }
const sources = new Sources()
const system = await build(sources)
// Whatever a system throws outside a request, this process keeps serving the other connections:
// errors are counted (reported with every measurement) and the first few sent, never fatal.
let uncaught = 0
const fail = (err: unknown): void => {
  if (++uncaught <= 3) send({ type: 'error', message: String((err as Error)?.stack ?? err) })
}
process.on('uncaughtException', fail)
process.on('unhandledRejection', fail)

/** Publishes `events` payloads due `intervalMs` apart; a late timer publishes what is due at once, as a feed would. */
async function burst (events: number, intervalMs: number): Promise<number> {
  const start = epoch()
  let late = 0
  for (let s = 0; s < events;) {
    const due = start + s * intervalMs
    const now = epoch()
    if (now < due) {
      await new Promise(resolve => setTimeout(resolve, due - now))
      continue
    }
    late = now - due
    system.publish({ s, d: due, t: epoch() })
    s++
  }
  return late
}

let cpuStart = process.cpuUsage()
process.on('message', (command: ServerCommand) => {
  (async () => {
    switch (command.type) {
      case 'memory':
        send({ type: 'memory', ...await collectedHeap(), subscribers: system.subscribers() })
        break
      case 'arm':
        resetPeakRss()
        cpuStart = process.cpuUsage()
        send({ type: 'armed' })
        break
      case 'burst':
        send({ type: 'published', lateMs: await burst(command.events, command.intervalMs) })
        break
      case 'measure': {
        const used = process.cpuUsage(cpuStart)
        send({
          type: 'measured',
          cpuMs: (used.user + used.system) / 1000,
          peakRss: peakRss(),
          rss: process.memoryUsage.rss(),
          errors: uncaught
        })
        break
      }
      case 'drop-counters':
        send({ type: 'drop-counters', opened: sources.dropOpened, finalizedAt: [...sources.dropFinalizedAt] })
        break
      case 'stall-counters':
        send({
          type: 'stall-counters',
          pulled: sources.stallPulled,
          finalizedAt: sources.stallFinalizedAt ?? null,
          exhausted: sources.stallExhausted
        })
        break
    }
  })().catch(fail)
})
process.on('disconnect', () => { process.exit(0) })

const { heap, rss } = await collectedHeap()
send({ type: 'ready', port: system.port, heap, rss })
