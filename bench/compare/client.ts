// The client process: raw node:http connections over loopback, a parser that only looks for
// `data: ` lines (and parses only the broadcast's small JSON), driven by the orchestrator over IPC.
// It reports its own CPU time with each result, to show it was not the bottleneck.
import http from 'node:http'
import { dataLineCounter, dataLines } from './parse.js'
import { DeliveryLedger, summarize } from './stats.js'
import type { BroadcastResult, ClientCommand, ClientMessage } from './protocol.js'
import { epoch, type BroadcastPayload } from './system.js'

const send = (message: ClientMessage): void => { process.send?.(message) }
const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity })
const HEADERS = { accept: 'text/event-stream' }
const cpuSince = (start: NodeJS.CpuUsage): number => {
  const used = process.cpuUsage(start)
  return (used.user + used.system) / 1000
}

/** Workload 1: read one stream to its end as fast as possible; count data lines and bytes. */
function stream (url: string): void {
  const cpu = process.cpuUsage()
  const start = performance.now()
  http.get(url, { agent, headers: HEADERS }, response => {
    let events = 0
    let bytes = 0
    const count = dataLineCounter()
    response.setEncoding('latin1')
    response.on('data', (chunk: string) => {
      bytes += chunk.length
      events += count(chunk)
    })
    response.on('end', () => {
      send({ type: 'streamed', result: { events, bytes, ms: performance.now() - start, cpuMs: cpuSince(cpu) } })
    })
  }).on('error', err => { send({ type: 'error', message: err.message }) })
}

/** Workload 2: many subscribers; every event's arrival, measured from its schedule and from its publish. */
class Broadcast {
  readonly ledger: DeliveryLedger
  readonly fromSchedule: Float64Array
  readonly fromPublish: Float64Array
  firstPublish = Infinity
  lastArrival = 0
  cpu = process.cpuUsage()
  reported = false

  constructor (readonly clients: number, readonly events: number) {
    this.ledger = new DeliveryLedger(clients, events)
    this.fromSchedule = new Float64Array(clients * events).fill(Number.NaN)
    this.fromPublish = new Float64Array(clients * events).fill(Number.NaN)
  }

  async connect (url: string): Promise<{ connected: number, errors: number }> {
    let connected = 0
    let errors = 0
    const open = (client: number): Promise<void> => new Promise(resolve => {
      http.get(url, { agent, headers: HEADERS }, response => {
        connected++
        response.setEncoding('utf8')
        response.on('error', () => {})
        response.on('data', dataLines(data => { this.arrive(client, data) }))
        resolve()
      }).on('error', () => { errors++; resolve() })
    })
    // 250 at a time: the server's listen backlog stays far from full.
    for (let i = 0; i < this.clients; i += 250) {
      await Promise.all(Array.from({ length: Math.min(250, this.clients - i) }, (_v, j) => open(i + j)))
    }
    return { connected, errors }
  }

  arrive (client: number, data: string): void {
    const now = epoch()
    const payload = JSON.parse(data) as BroadcastPayload | string
    if (typeof payload !== 'object') return // a greeting some systems send when a client subscribes
    const { s, d, t } = payload
    if (!this.ledger.record(client, s)) return
    const at = client * this.events + s
    this.fromSchedule[at] = now - d
    this.fromPublish[at] = now - t
    if (t < this.firstPublish) this.firstPublish = t
    if (now > this.lastArrival) this.lastArrival = now
    if (this.ledger.complete) this.report()
  }

  report (): void {
    if (this.reported) return
    this.reported = true
    // Read before the summaries: sorting a million latencies is the report's cost, not the delivery's.
    const cpuMs = cpuSince(this.cpu)
    const schedule = summarize(this.fromSchedule)
    const publish = summarize(this.fromPublish)
    const result: BroadcastResult = {
      clients: this.clients,
      events: this.events,
      unique: this.ledger.unique,
      duplicates: this.ledger.duplicates,
      unexpected: this.ledger.unexpected,
      gaps: this.ledger.gaps,
      clientsWithGaps: this.ledger.clientsWithGaps,
      fromSchedule: { p50: schedule.p50, p99: schedule.p99, max: schedule.max },
      fromPublish: { p50: publish.p50, p99: publish.p99, max: publish.max },
      firstToLast: this.lastArrival - this.firstPublish,
      cpuMs
    }
    send({ type: 'delivered', result })
  }
}

/** Workload 4: `clients` clients each read one event and leave at once; when each left, by its id. */
async function drop (url: string, clients: number): Promise<void> {
  const cpu = process.cpuUsage()
  const droppedAt: Array<[string, number]> = []
  let errors = 0
  const visit = (id: string): Promise<void> => new Promise(resolve => {
    let left = false
    const request = http.get(`${url}?id=${id}`, { agent, headers: HEADERS }, response => {
      response.setEncoding('utf8')
      response.on('error', () => {}) // the 'aborted' our own destroy() causes
      response.on('data', dataLines(() => {
        if (left) return
        left = true
        request.destroy()
        droppedAt.push([id, epoch()])
        resolve()
      }))
      response.on('close', resolve)
    })
    request.on('error', () => {
      if (!left) errors++
      resolve()
    })
  })
  for (let i = 0; i < clients; i += 250) {
    await Promise.all(Array.from({ length: Math.min(250, clients - i) }, (_v, j) => visit(String(i + j))))
  }
  send({ type: 'dropped', droppedAt, errors, cpuMs: cpuSince(cpu) })
}

/** Workload 4: one client that reads the first chunk, then stops reading until told to leave. */
let stalled: http.ClientRequest | undefined
function stall (url: string): void {
  stalled = http.get(url, { agent, headers: HEADERS }, response => {
    response.setEncoding('latin1')
    response.on('error', () => {})
    response.once('data', (chunk: string) => {
      response.pause()
      response.socket.pause()
      let eventsRead = 0
      dataLines(() => { eventsRead++ })(chunk)
      send({ type: 'stalled', eventsRead, bytesRead: chunk.length })
    })
  })
  stalled.on('error', () => {})
}

let broadcast: Broadcast | undefined
process.on('message', (command: ClientCommand) => {
  (async () => {
    switch (command.type) {
      case 'stream': stream(command.url); break
      case 'connect': {
        broadcast = new Broadcast(command.clients, command.events)
        const cpu = process.cpuUsage()
        const { connected, errors } = await broadcast.connect(command.url)
        send({ type: 'connected', connected, errors, cpuMs: cpuSince(cpu) })
        break
      }
      case 'start-burst': if (broadcast !== undefined) broadcast.cpu = process.cpuUsage(); break
      case 'finish': broadcast?.report(); break
      case 'drop': await drop(command.url, command.clients); break
      case 'stall': stall(command.url); break
      case 'leave':
        stalled?.destroy()
        send({ type: 'left', at: epoch() })
        break
    }
  })().catch(err => { send({ type: 'error', message: String(err?.stack ?? err) }) })
})
process.on('disconnect', () => { process.exit(0) })
