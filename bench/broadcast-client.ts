// The client process for the broadcast benchmark: open N SSE connections, then record when each event
// arrives on each connection. Driven by its parent over IPC.
import http from 'node:http'

const [url, countArg, eventsArg] = process.argv.slice(2)
const COUNT = Number(countArg)
const EVENTS = Number(eventsArg)
const send = (message: object): void => { process.send?.(message) }

const latencies = new Float64Array(COUNT * EVENTS)
let received = 0
let lastArrival = 0
let firstPublish = Infinity
let errors = 0
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
          const { s, t } = JSON.parse(text.slice(at + 6, end)) as { s: number, t: number }
          if (s !== seen) errors++ // out of order or missing
          seen = s + 1
          latencies[index * EVENTS + s] = now - t
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

function report (): void {
  const sorted = latencies.slice().sort()
  send({
    type: 'done',
    received,
    errors,
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
    max: sorted[sorted.length - 1],
    firstToLast: lastArrival - firstPublish
  })
}

for (let i = 0; i < COUNT; i += 250) {
  await Promise.all(Array.from({ length: Math.min(250, COUNT - i) }, (_, j) => connect(i + j)))
}
send({ type: 'connected', errors })
