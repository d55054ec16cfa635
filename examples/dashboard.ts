// 8. dashboard: the page `npm start` opens on, at http://localhost:3000/
//
// A static page (examples/public/) that draws the sensors stream as a chart and the stocks stream as
// a ticker, each fed by the browser's own `EventSource`, with each connection's state
// (connecting / connected / reconnecting). No build step and nothing fetched from elsewhere: the
// chart is a few lines of SVG drawn by dashboard.js, and this plugin serves the three files.
// The streams it reads are the other examples' routes, so the page is part of the whole demo:
// see build() in ./server.ts.
import { readFile } from 'node:fs/promises'
import type { FastifyPluginAsync } from 'fastify'

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
}
