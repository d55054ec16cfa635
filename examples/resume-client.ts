// 5. resume, the client: prints events and keeps the id of the last one in a file, so the next run
// continues where this one stopped. Stop it with Ctrl-C, or let --count stop it.
//
//   npx tsx examples/resume-client.ts [url] [--file .last-event-id] [--count n]
//
// The url defaults to the demo's resume stream, http://localhost:3000/resume/events.
// The `eventsource` package parses the stream and reconnects; a custom `fetch` adds the saved id as
// the Last-Event-ID header of the first request (the package sends its own on later reconnects).
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { EventSource } from 'eventsource'

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    file: { type: 'string', default: '.last-event-id' },
    count: { type: 'string' }
  }
})
const url = positionals[0] ?? 'http://localhost:3000/resume/events'
const file = values.file
const count = values.count === undefined ? Infinity : Number(values.count)

function loadLastEventId (): string | undefined {
  if (!existsSync(file)) return undefined
  const id = readFileSync(file, 'utf8').trim()
  return id === '' ? undefined : id
}

function saveLastEventId (id: string): void {
  // Write then rename: a run killed mid-write leaves the previous id, never half of one.
  writeFileSync(file + '.tmp', id)
  renameSync(file + '.tmp', file)
}

let lastEventId = loadLastEventId()
let received = 0
let stopped = false

const source = new EventSource(url, {
  fetch: (input, init) => fetch(input, {
    ...init,
    headers: lastEventId === undefined ? init.headers : { ...init.headers, 'Last-Event-ID': lastEventId }
  })
})

function stop (message: string): void {
  stopped = true
  source.close()
  console.error(message)
}

source.onopen = () => {
  console.error(lastEventId === undefined ? `Connected to ${url}` : `Connected to ${url} after event ${lastEventId}`)
}

source.onmessage = event => {
  // Events parsed from the same chunk can still arrive after close(): take none we will not print.
  if (stopped) return
  console.log(`Received event: ${event.data}`)
  if (event.lastEventId !== '') {
    lastEventId = event.lastEventId
    saveLastEventId(lastEventId)
  }
  if (++received >= count) stop(`Stopped after ${received} events; the next run continues after ${lastEventId}.`)
}

source.onerror = event => {
  if (source.readyState === EventSource.CLOSED) {
    console.error(`Gave up: ${event.message ?? 'the server refused the stream'}`)
    process.exitCode = 1
  } else {
    console.error(`Disconnected (${event.message ?? 'stream ended'}); reconnecting...`)
  }
}

process.once('SIGINT', () => stop('Client stopped.'))
