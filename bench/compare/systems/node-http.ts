// The baseline: what a careful user writes by hand on node:http. One write per event, wait for
// `drain` when write() says so (and stop waiting when the client leaves); a broadcast is a Set of
// responses with one write per client per event.
import http, { type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { once } from 'node:events'
import { queryParam, type BuildSystem, type Tick } from '../system.js'

const HEAD = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' }

/** Writes each value as a data frame, honouring backpressure, until the source ends or the client leaves. */
async function writeAll (response: ServerResponse, source: AsyncIterable<Tick>, signal: AbortSignal): Promise<void> {
  try {
    for await (const value of source) {
      if (!response.write(`data: ${JSON.stringify(value)}\n\n`)) await once(response, 'drain', { signal })
    }
    response.end()
  } catch {
    // The client left while we waited for drain: leaving the loop closes the source.
  }
}

const build: BuildSystem = async sources => {
  const subscribers = new Set<ServerResponse>()
  const server = http.createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0]
    const closed = new AbortController()
    response.once('close', () => { closed.abort() })
    if (path === '/broadcast') {
      response.writeHead(200, HEAD)
      response.flushHeaders()
      subscribers.add(response)
      response.once('close', () => { subscribers.delete(response) })
      return
    }
    response.writeHead(200, HEAD)
    if (path === '/stream') {
      writeAll(response, sources.ticks(Number(queryParam(request.url, 'n'))), closed.signal)
    } else if (path === '/drop-source') {
      writeAll(response, sources.dropFeed(queryParam(request.url, 'id'), closed.signal), closed.signal)
    } else if (path === '/stall') {
      writeAll(response, sources.stallFeed(), closed.signal)
    } else {
      response.statusCode = 404
      response.end()
    }
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    port: (server.address() as AddressInfo).port,
    publish (payload) {
      const frame = `data: ${JSON.stringify(payload)}\n\n`
      for (const response of subscribers) response.write(frame)
    },
    subscribers: () => subscribers.size,
    async close () {
      server.closeAllConnections()
      server.close()
    }
  }
}
export default build
