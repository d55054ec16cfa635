// The client process for the broadcast benchmark: open N SSE connections, then record when each event
// arrives on each connection. Driven by its parent over IPC: 'start' just before the burst (its CPU is
// measured from there, so a client that is the bottleneck shows), and it reports once every event
// reached every connection, or once the time limit says some never will.
import http from 'node:http'

const [url, countArg, eventsArg, limitArg] = process.argv.slice(2)
const COUNT = Number(countArg)
const EVENTS = Number(eventsArg)
/** After 'start', how long to wait for every event before reporting what came (ms). */
const LIMIT_MS = Number(limitArg)
const send = (message: object): void => { process.send?.(message) }

/** Per event per connection: from when it was due (the producer's schedule), and from its publish() call. */
const fromSchedule = new Float64Array(COUNT * EVENTS)
const fromPublish = new Float64Array(COUNT * EVENTS)
let received = 0
let lastArrival = 0
let firstPublish = Infinity
let errors = 0
let cpuStart: NodeJS.CpuUsage | undefined
let reported = false
const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity })

function connect (index: number): Promise<void> {
  return new Promise(resolve => {
    const request = http.get(url as string, { agent, headers: { accept: 'text/event-stream' } }, response => {
      let seen = 0
      let tail = ''
      response.setEncoding('utf8')
      response.on('data', (chunk: string) => {
        const now = performance.timeOrigin + performance.now()
        const text = tail + chunk
        let from = 0
        for (;;) {
          const at = text.indexOf('data: ', from)
          const end = at === -1 ? -1 : text.indexOf('\n', at)
          if (end === -1) { tail = at === -1 ? '' : text.slice(at); break }
          const { s, d, t } = JSON.parse(text.slice(at + 6, end)) as { s: number, d: number, t: number }
          if (s !== seen) errors++ // out of order, missing or doubled
          seen = s + 1
          fromSchedule[index * EVENTS + s] = now - d
          fromPublish[index * EVENTS + s] = now - t
          if (t < firstPublish) firstPublish = t
          received++
          from = end + 1
        }
        if (received === COUNT * EVENTS) {
          lastArrival = now
          report()
        }
      })
      resolve()
    })
    request.on('error', () => { errors++; resolve() })
  })
}

function percentile (sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] as number
}

function summary (latencies: Float64Array): { p50: number, p99: number, max: number } {
  const sorted = latencies.slice().sort()
  return { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), max: sorted[sorted.length - 1] as number }
}

function report (): void {
  if (reported) return
  reported = true
  const used = process.cpuUsage(cpuStart)
  send({
    type: 'done',
    received,
    // Events that never came count as errors too.
    errors: errors + (COUNT * EVENTS - received),
    fromSchedule: summary(fromSchedule),
    fromPublish: summary(fromPublish),
    firstToLast: received === COUNT * EVENTS ? lastArrival - firstPublish : Infinity,
    clientCpuMs: (used.user + used.system) / 1000
  })
}

process.on('message', (message: { type: string }) => {
  if (message.type !== 'start') return
  cpuStart = process.cpuUsage()
  setTimeout(report, LIMIT_MS).unref()
})

for (let i = 0; i < COUNT; i += 250) {
  await Promise.all(Array.from({ length: Math.min(250, COUNT - i) }, (_, j) => connect(i + j)))
}
send({ type: 'connected', errors })
