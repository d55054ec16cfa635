// A server process for the broadcast benchmark, driven by its parent over IPC.
// Variant 'plugin': a channel and the one-line route. Variant 'baseline': the hand-written loop users
// write today: keep every raw response in a Set, one write per client per event.
import type { AddressInfo } from 'node:net'
import type { ServerResponse } from 'node:http'
import Fastify from 'fastify'
import ssePlugin from '../lib/index.js'

type Command = { type: 'memory' } | { type: 'burst', events: number, intervalMs: number } | { type: 'cpu' } | { type: 'exit' }

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

let cpuStart: NodeJS.CpuUsage | undefined
process.on('message', async (command: Command) => {
  if (command.type === 'memory') {
    gc()
    await new Promise(resolve => setTimeout(resolve, 100))
    gc()
    const heap = process.memoryUsage().heapUsed
    send({ type: 'memory', subscribers: subscribers(), perSubscriber: (heap - baseHeap) / subscribers() })
  } else if (command.type === 'burst') {
    cpuStart = process.cpuUsage()
    const start = performance.now()
    // Events are due at fixed times; a late timer publishes what is due at once, as a real feed would.
    for (let seq = 0; seq < command.events;) {
      const due = start + seq * command.intervalMs
      const now = performance.now()
      if (now < due) {
        await new Promise(resolve => setTimeout(resolve, due - now))
        continue
      }
      publish(JSON.stringify({ s: seq, t: performance.timeOrigin + performance.now() }))
      seq++
    }
  } else if (command.type === 'cpu') {
    const used = process.cpuUsage(cpuStart)
    send({ type: 'cpu', ms: (used.user + used.system) / 1000 })
  } else {
    await app.close()
    process.exit(0)
  }
})
