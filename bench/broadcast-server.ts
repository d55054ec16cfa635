// A server process for the broadcast benchmark, driven by its parent over IPC.
// Variant 'plugin': a channel and the one-line route. Variant 'baseline': the hand-written loop users
// write today: keep every raw response in a Set, one write per client per event.
import { readFileSync, writeFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import type { ServerResponse } from 'node:http'
import { writeHeapSnapshot } from 'node:v8'
import Fastify from 'fastify'

import ssePlugin from '../lib/index.js'

type Command = { type: 'memory' } | { type: 'burst', events: number, intervalMs: number } | { type: 'measure' } |
{ type: 'exit' }

/** Peaks of `process.memoryUsage()` seen while the burst ran (bytes). */
export interface MemoryPeaks { rss: number, heapUsed: number, external: number, arrayBuffers: number }

const variant = process.argv[2] as 'plugin' | 'baseline'
const send = (message: object): void => { process.send?.(message) }
const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) throw new Error('run with --expose-gc')

const app = Fastify({ logger: false })
let publish: (data: string) => void
let subscribers: () => number

if (variant === 'plugin') {
  await app.register(ssePlugin)
  const channel = app.sse.channel('weather')
  app.get('/events', (request, reply) => reply.sse(channel.subscribe({ lastEventId: request.lastEventId })))
  publish = data => { channel.publish(data).catch(err => { throw err }) }
  subscribers = () => channel.size
} else {
  const clients = new Set<ServerResponse>()
  app.get('/events', (request, reply) => {
    reply.hijack()
    const res = reply.raw
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
    res.flushHeaders()
    clients.add(res)
    request.raw.on('close', () => { clients.delete(res) })
  })
  publish = data => {
    const frame = `data: ${data}\n\n`
    for (const res of clients) res.write(frame)
  }
  subscribers = () => clients.size
}

await app.listen({ port: 0, host: '127.0.0.1' })
gc()
const baseHeap = process.memoryUsage().heapUsed
send({ type: 'ready', port: (app.server.address() as AddressInfo).port })

/** The kernel's high-water mark of this process's resident memory (bytes); undefined where there is none. */
function residentPeak (): number | undefined {
  try {
    const kb = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]
    return kb === undefined ? undefined : Number(kb) * 1024
  } catch {
    return undefined
  }
}

/** Start the kernel's high-water mark over from the current resident size; false where that is not possible. */
function resetResidentPeak (): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5')
    return true
  } catch {
    return false
  }
}

let cpuStart: NodeJS.CpuUsage | undefined
let rssAtStart = 0
let heapAtStart = 0
let peakReset = false
const peaks: MemoryPeaks = { rss: 0, heapUsed: 0, external: 0, arrayBuffers: 0 }
let sampler: NodeJS.Timeout | undefined

function sample (): void {
  const usage = process.memoryUsage()
  peaks.rss = Math.max(peaks.rss, usage.rss)
  peaks.heapUsed = Math.max(peaks.heapUsed, usage.heapUsed)
  peaks.external = Math.max(peaks.external, usage.external)
  peaks.arrayBuffers = Math.max(peaks.arrayBuffers, usage.arrayBuffers)
}

process.on('message', async (command: Command) => {
  if (command.type === 'memory') {
    gc()
    await new Promise(resolve => setTimeout(resolve, 100))
    gc()
    const heap = process.memoryUsage().heapUsed
    // BENCH_HEAP_SNAPSHOT=idle: what every idle subscriber holds, for a look (diagnosis only).
    if (process.env.BENCH_HEAP_SNAPSHOT === 'idle') process.stderr.write(`heap snapshot: ${writeHeapSnapshot()}\n`)
    send({ type: 'memory', subscribers: subscribers(), perSubscriber: (heap - baseHeap) / subscribers() })
  } else if (command.type === 'burst') {
    gc()
    peakReset = resetResidentPeak()
    ;({ rss: rssAtStart, heapUsed: heapAtStart } = process.memoryUsage())
    sample()
    // Sampled too (the breakdown the kernel's peak cannot give, and the peak where there is no VmHWM).
    sampler = setInterval(sample, 10)
    cpuStart = process.cpuUsage()
    const start = performance.now()
    // Events are due at fixed times; a late timer publishes what is due at once, as a real feed would.
    // Each carries when it was due and when it was published: latency is measured from both.
    for (let seq = 0; seq < command.events;) {
      const due = start + seq * command.intervalMs
      const now = performance.now()
      if (now < due) {
        await new Promise(resolve => setTimeout(resolve, due - now))
        continue
      }
      if (process.env.BENCH_HEAP_SNAPSHOT === 'burst' && seq === command.events >> 1) {
        // For a look at what the burst holds (skews this run's latencies: diagnosis only).
        process.stderr.write(`heap snapshot: ${writeHeapSnapshot()}\n`)
      }
      const { timeOrigin } = performance
      publish(JSON.stringify({ s: seq, d: timeOrigin + due, t: timeOrigin + performance.now() }))
      seq++
    }
  } else if (command.type === 'measure') {
    const used = process.cpuUsage(cpuStart)
    clearInterval(sampler)
    sample()
    const hwm = peakReset ? residentPeak() : undefined
    send({
      type: 'measure',
      cpuMs: (used.user + used.system) / 1000,
      rssAtStart,
      heapAtStart,
      peakRss: hwm ?? peaks.rss,
      peakSource: hwm === undefined ? 'sampled' : 'VmHWM',
      peaks
    })
  } else {
    await app.close()
    process.exit(0)
  }
})
