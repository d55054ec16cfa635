// A client process for the stream benchmark: GET the URL, read as fast as possible, count events.
// Prints one JSON line: { events, bytes, ms }.
import http from 'node:http'

const url = process.argv[2]
if (url === undefined) throw new Error('usage: stream-client.ts URL')
const start = performance.now()
http.get(url, { agent: false, headers: { accept: 'text/event-stream' } }, response => {
  let events = 0
  let bytes = 0
  let tail = ''
  response.setEncoding('utf8')
  response.on('data', (chunk: string) => {
    bytes += Buffer.byteLength(chunk)
    // Count frame ends (a blank line), across chunk boundaries.
    const text = tail + chunk
    let at = text.indexOf('\n\n')
    while (at !== -1) { events++; at = text.indexOf('\n\n', at + 2) }
    tail = text.slice(-1)
  })
  response.on('end', () => {
    process.stdout.write(JSON.stringify({ events, bytes, ms: performance.now() - start }) + '\n')
  })
})
