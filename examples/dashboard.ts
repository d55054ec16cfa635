// 8. dashboard: the page `npm start` opens on, at http://localhost:3000/
//
// A static page (examples/public/) that draws the sensors as a chart, the stocks as a ticker and the
// weather broadcast, all three from ONE EventSource on /dashboard/events: `app.sse.multiplex()`
// carries the three panels' channels on one stream (a browser keeps six HTTP/1.1 connections per
// origin; a stream per panel would spend them). Each event is named after its channel (`sensors`,
// `stocks`, `stocks.upstream-error`, `weather`, `weather.sse-gap`) and one Last-Event-ID resumes all
// three. The sensors and stocks examples publish to their channels from one producer each (their
// `channel` option), the broadcast example from its own; see build() in ./server.ts.
//
// A fourth panel streams an LLM-style generation (./llm/index.ts): a POST read with fetch, resumed
// after a reload from the last id the page kept in sessionStorage, cancellable.
//
// No build step and nothing fetched from elsewhere: the chart is a few lines of SVG drawn by
// dashboard.js, and this plugin serves the three files.
import { readFile } from 'node:fs/promises'
import type { FastifyPluginAsync } from 'fastify'

/** The channels of the dashboard's panels: dashboard.js listens for events of these names. */
export const PANEL_CHANNELS = { sensors: 'sensors', stocks: 'stocks', weather: 'weather' } as const

const PAGES: Record<string, { file: string, type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/dashboard.js': { file: 'dashboard.js', type: 'text/javascript; charset=utf-8' },
  '/dashboard.css': { file: 'dashboard.css', type: 'text/css; charset=utf-8' }
}

export const dashboard: FastifyPluginAsync = async function dashboard (app) {
  for (const [url, { file, type }] of Object.entries(PAGES)) {
    const path = new URL(`public/${file}`, import.meta.url)
    app.get(url, async (request, reply) => {
      reply.type(type).header('cache-control', 'no-cache')
      return readFile(path)
    })
  }

  app.get('/dashboard/events', { schema: { summary: 'The dashboard\'s three panels on one stream' } },
    (request, reply) => reply.sse(app.sse.multiplex(Object.values(PANEL_CHANNELS))))
}
