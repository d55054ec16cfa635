// `npm run bench:stream`: stream N small JSON events to one client, through the plugin and through a
// hand-written node:http loop that honours drain, in the same run, and print events/s and the ratio.
import { execFile } from 'node:child_process'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { once } from 'node:events'
import { promisify } from 'node:util'
import Fastify from 'fastify'
import ssePlugin from '../lib/index.js'

const EVENTS = Number(process.env.BENCH_EVENTS ?? 200_000)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5)
const TARGET = 0.9
const run = promisify(execFile)

/** The same source for both servers: small JSON objects from an async generator. */
async function * ticks (count: number): AsyncGenerator<{ i: number, symbol: string, price: number }> {
  for (let i = 0; i < count; i++) yield { i, symbol: 'ACME', price: 100 + (i % 100) / 100 }
}

async function listen (server: http.Server): Promise<string> {
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/events`
}

/** The loop a user would write by hand: one write per event, wait for drain when write says so. */
function handWritten (): http.Server {
  return http.createServer(async (_request, response) => {
    response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
    for await (const value of ticks(EVENTS)) {
      if (!response.write(`data: ${JSON.stringify(value)}\n\n`)) await once(response, 'drain')
    }
    response.end()
  })
}

async function pluginServer (): Promise<{ url: string, close: () => Promise<void> }> {
  const app = Fastify({ logger: false })
  await app.register(ssePlugin)
  app.get('/events', { sse: true }, async function * () { yield * ticks(EVENTS) })
  await app.listen({ port: 0, host: '127.0.0.1' })
  return { url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/events`, close: () => app.close() }
}

async function measure (url: string): Promise<number> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', new URL('./stream-client.ts', import.meta.url).pathname, url])
  const { events, ms } = JSON.parse(stdout) as { events: number, ms: number }
  if (events !== EVENTS) throw new Error(`the client received ${events} of ${EVENTS} events`)
  return events / (ms / 1000)
}

function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] as number
}

export async function benchStream (): Promise<boolean> {
  const baseline = handWritten()
  const baselineUrl = await listen(baseline)
  const plugin = await pluginServer()
  const rates = { baseline: [] as number[], plugin: [] as number[] }
  // Interleaved rounds, so a noisy neighbour hurts both sides alike.
  await measure(baselineUrl)
  await measure(plugin.url)
  for (let round = 0; round < ROUNDS; round++) {
    rates.baseline.push(await measure(baselineUrl))
    rates.plugin.push(await measure(plugin.url))
  }
  baseline.close()
  await plugin.close()
  const b = median(rates.baseline)
  const p = median(rates.plugin)
  const ratio = p / b
  const fmt = (n: number): string => Math.round(n).toLocaleString('en-US')
  console.log(`stream: ${EVENTS.toLocaleString('en-US')} small JSON events to one client, median of ${ROUNDS} rounds`)
  console.log(`  hand-written node:http + drain  ${fmt(b)} events/s   (rounds: ${rates.baseline.map(fmt).join(', ')})`)
  console.log(`  fastify-sse-stream              ${fmt(p)} events/s   (rounds: ${rates.plugin.map(fmt).join(', ')})`)
  console.log(`  ratio ${ratio.toFixed(2)}x (target >= ${TARGET}x): ${ratio >= TARGET ? 'PASS' : 'FAIL'}`)
  return ratio >= TARGET
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.exitCode = (await benchStream()) ? 0 : 1
}
