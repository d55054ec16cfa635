// `npm run bench:compress`: what `compress: true` saves and what it costs.
// Bytes: BENCH_EVENTS (10,000) JSON events streamed through the plugin and read off the wire with no
// coding, gzip and br, paced (a turn of the event loop between events, so each is flushed alone, as
// in a live feed) and in a burst (frames coalesced into batches). Each decoded stream must be the
// unencoded one exactly. Memory: BENCH_STREAMS (500) streams held open in a server process of its
// own: resident set per stream with compression off, gzip and br, as the streams go on.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { createInterface } from 'node:readline'
import { setImmediate as nextTurn } from 'node:timers/promises'
import zlib from 'node:zlib'
import Fastify from 'fastify'
import ssePlugin from '../lib/index.js'
import { jsonEvent } from './json-events.js'

const EVENTS = Number(process.env.BENCH_EVENTS ?? 10_000)
const STREAMS = Number(process.env.BENCH_STREAMS ?? 500)
/** Events each stream has sent when the memory is measured: fresh, warm, its encoder's window long full. */
const MEMORY_POINTS = [1, 100, 1000, 3000]
const WARM_UP_STREAMS = 20
const CODINGS = [undefined, 'gzip', 'br'] as const
type Coding = typeof CODINGS[number]

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US')
const percent = (part: number, whole: number): string => `${(100 * part / whole).toFixed(1)}%`

/** GET `url` asking for `coding`: the bytes as they came off the wire, and the text they decode to. */
function fetchRaw (url: string, coding: Coding): Promise<{ wire: number, text: string, ms: number }> {
  const started = performance.now()
  const headers = { accept: 'text/event-stream', ...(coding === undefined ? {} : { 'accept-encoding': coding }) }
  return new Promise((resolve, reject) => {
    http.get(url, { agent: false, headers }, response => {
      const chunks: Buffer[] = []
      response.on('data', (chunk: Buffer) => chunks.push(chunk))
      response.on('end', () => {
        const ms = performance.now() - started
        const wire = Buffer.concat(chunks)
        const encoding = response.headers['content-encoding']
        if (encoding !== coding) reject(new Error(`asked for ${coding ?? 'no coding'}, got ${encoding ?? 'none'}`))
        const bytes = encoding === 'gzip' ? zlib.gunzipSync(wire) : encoding === 'br' ? zlib.brotliDecompressSync(wire) : wire
        resolve({ wire: wire.length, text: bytes.toString('utf8'), ms })
      })
    }).on('error', reject)
  })
}

async function benchBytes (): Promise<boolean> {
  const app = Fastify({ logger: false })
  await app.register(ssePlugin, { compress: true, heartbeat: false })
  app.get('/paced', { sse: true }, async function * () {
    for (let i = 0; i < EVENTS; i++) {
      yield jsonEvent(i)
      await nextTurn()
    }
  })
  app.get('/burst', { sse: true }, async function * () {
    for (let i = 0; i < EVENTS; i++) yield jsonEvent(i)
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  let exact = true
  console.log(`compress: ${fmt(EVENTS)} JSON events (order updates), bytes on the wire`)
  for (const mode of ['paced', 'burst'] as const) {
    const runs = []
    for (const coding of CODINGS) runs.push({ coding, ...await fetchRaw(`${base}/${mode}`, coding) })
    const [identity, ...encoded] = runs
    const columns = encoded.map(run => {
      if (run.text !== identity!.text) exact = false
      return `${run.coding} ${fmt(run.wire)} (${percent(run.wire, identity!.wire)}, ${fmt(run.ms)} ms)`
    })
    const label = mode === 'paced' ? 'paced, each event flushed alone' : 'burst, frames coalesced        '
    console.log(`  ${label}  none ${fmt(identity!.wire)} (${fmt(identity!.ms)} ms)   ${columns.join('   ')}`)
  }
  await app.close()
  console.log(`  decoded, every encoded stream is the unencoded one byte for byte: ${exact ? 'PASS' : 'FAIL'}`)
  return exact
}

/** `count` streams opened on `url`, read and discarded as they come. */
async function openStreams (url: string, count: number, coding: Coding): Promise<http.ClientRequest[]> {
  const headers = { accept: 'text/event-stream', ...(coding === undefined ? {} : { 'accept-encoding': coding }) }
  return Promise.all(Array.from({ length: count }, () => new Promise<http.ClientRequest>((resolve, reject) => {
    const request = http.get(url, { agent: false, headers }, response => {
      response.resume()
      resolve(request)
    })
    request.on('error', reject)
  })))
}

/** Raise every stream to `events` sent, wait for `streams` of them to get there: the server's resident set then. */
async function residentSet (base: string, streams: number, events: number): Promise<number> {
  const response = await fetch(`${base}/memory?streams=${streams}&events=${events}`)
  return ((await response.json()) as { rss: number }).rss
}

/** Resident bytes per open stream in a fresh server process, asked for `coding`, after each of MEMORY_POINTS events. */
async function memoryPerStream (coding: Coding): Promise<number[]> {
  const server = spawn(process.execPath, ['--import', 'tsx', '--expose-gc', new URL('./compress-server.ts', import.meta.url).pathname],
    { env: { ...process.env, BENCH_COMPRESS: String(coding !== undefined) }, stdio: ['ignore', 'pipe', 'inherit'] })
  try {
    const [base] = await once(createInterface({ input: server.stdout }), 'line') as [string]
    // Made once, whatever the number of streams: compiled code, pools, the first encoders' tables.
    const warmUp = await openStreams(`${base}/events`, WARM_UP_STREAMS, coding)
    await residentSet(base, WARM_UP_STREAMS, MEMORY_POINTS.at(-1)!)
    for (const request of warmUp) request.destroy()
    const before = await residentSet(base, 0, 0)
    const clients = await openStreams(`${base}/events`, STREAMS, coding)
    const perStream: number[] = []
    for (const events of MEMORY_POINTS) perStream.push((await residentSet(base, STREAMS, events) - before) / STREAMS)
    for (const request of clients) request.destroy()
    return perStream
  } finally {
    server.kill()
  }
}

async function benchMemory (): Promise<void> {
  console.log(`compress: resident memory per open stream (${fmt(STREAMS)} streams, a server process of its own), compress off / gzip / br`)
  const [off, gzip, br] = [await memoryPerStream(undefined), await memoryPerStream('gzip'), await memoryPerStream('br')]
  const kib = (bytes: number): string => `${(bytes / 1024).toFixed(0)} KiB`
  MEMORY_POINTS.forEach((events, i) => {
    const label = `after ${fmt(events)} event${events === 1 ? '' : 's'}`.padEnd(20)
    console.log(`  ${label} ${kib(off[i]!)} / ${kib(gzip[i]!)} (+${kib(gzip[i]! - off[i]!)}) / ${kib(br[i]!)} (+${kib(br[i]! - off[i]!)})`)
  })
}

export async function benchCompress (): Promise<boolean> {
  const exact = await benchBytes()
  await benchMemory()
  return exact
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.exitCode = (await benchCompress()) ? 0 : 1
}
