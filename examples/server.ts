// The demo for `npm start`: every example under its own prefix, and the dashboard at /.
//
//   npm start                                  # http://localhost:3000, in memory
//   PORT=8080 HOST=0.0.0.0 npm start           # another port, every interface
//   REDIS_URL=redis://127.0.0.1:6379 npm start # channels through Redis (keys under REDIS_PREFIX, default sse:)
//   LLM_UPSTREAM_URL=http://127.0.0.1:8000 npm start # /llm/chat on another OpenAI-compatible API (default: a local mock)
//
// Importing this file starts nothing: build() returns the whole demo as one Fastify app (tests use
// it); it listens only when run as the main module.
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import swagger from '@fastify/swagger'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import ssePlugin, { type SsePluginOptions } from '../lib/index.js'
import { auth, loggerWithoutQueries, notFoundWithoutQuery, type AuthOptions } from './auth.js'
import { basic, type BasicOptions } from './basic.js'
import { broadcast, type BroadcastOptions } from './broadcast.js'
import { dashboard, PANEL_CHANNELS } from './dashboard.js'
import { formats, type FormatsOptions } from './formats.js'
import { metrics } from './metrics.js'
import { headers, type HeadersOptions } from './headers.js'
import { llm, type LlmOptions } from './llm/index.js'
import { resume, type ResumeOptions } from './resume.js'
import { sensors, type SensorsOptions } from './sensors.js'
import { stocks, type StocksOptions } from './stocks/index.js'

export interface DemoOptions {
  logger?: FastifyServerOptions['logger']
  /** The plugin's options: `redis` for channels through Redis, `retry` for how soon browsers reconnect. */
  sse?: SsePluginOptions
  basic?: BasicOptions
  headers?: HeadersOptions
  formats?: FormatsOptions
  sensors?: SensorsOptions
  resume?: ResumeOptions
  stocks?: StocksOptions
  broadcast?: BroadcastOptions
  auth?: AuthOptions
  llm?: LlmOptions
}

export async function build (opts: DemoOptions = {}): Promise<FastifyInstance> {
  // Access logs name paths, never query strings (a token there would be kept by every log line).
  const app = Fastify({ logger: loggerWithoutQueries(opts.logger ?? false) })
  app.setNotFoundHandler(notFoundWithoutQuery)
  // The API document, OpenAPI 3.2 (streams' events as `itemSchema`), at /openapi.json. Before the
  // routes: @fastify/swagger sees the routes added after it.
  await app.register(swagger, {
    openapi: { openapi: '3.2.0', info: { title: 'fastify-sse-stream demo', version: '1.0.0' } },
    convertConstToEnum: false
  })
  // Each LLM generation is an upstream completion that runs whoever reads it: a few per client at once.
  await app.register(ssePlugin, { maxGenerationsPerClient: 4, ...opts.sse })
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())
  await app.register(metrics)
  await app.register(basic, { prefix: '/basic', ...opts.basic })
  await app.register(headers, { prefix: '/headers', ...opts.headers })
  await app.register(formats, { prefix: '/formats', ...opts.formats })
  // The sensors, stocks and weather panels of the dashboard read these channels, on one stream.
  await app.register(sensors, { prefix: '/sensors', channel: PANEL_CHANNELS.sensors, ...opts.sensors })
  await app.register(resume, { prefix: '/resume', ...opts.resume })
  await app.register(stocks, { prefix: '/stocks', channel: PANEL_CHANNELS.stocks, ...opts.stocks })
  await app.register(broadcast, { prefix: '/broadcast', channel: PANEL_CHANNELS.weather, ...opts.broadcast })
  await app.register(auth, { prefix: '/auth', ...opts.auth })
  await app.register(llm, { prefix: '/llm', ...opts.llm })
  await app.register(dashboard)
  return app
}

/** Pretty logs for a person at a terminal; JSON lines for everything else. */
function loggerOptions (): FastifyServerOptions['logger'] {
  const level = process.env.LOG_LEVEL ?? 'info'
  if (process.stdout.isTTY !== true) return { level }
  return { level, transport: { target: 'pino-pretty', options: { translateTime: 'HH:MM:ss', ignore: 'pid,hostname' } } }
}

/**
 * `app.close()` for a server browsers talk to: streams end first (each with a retry hint), then idle
 * connections close; a socket a browser opened but never used (a preconnect) would hold close()
 * until Node's headers timeout, a minute later, so whatever is still open after `graceMs` is cut.
 */
export async function shutdown (app: FastifyInstance, graceMs = 3000): Promise<void> {
  const timer = setTimeout(() => app.server.closeAllConnections(), graceMs)
  timer.unref()
  try {
    await app.close()
  } finally {
    clearTimeout(timer)
  }
}

async function main (): Promise<void> {
  const app = await build({
    logger: loggerOptions(),
    sse: {
      ...(process.env.REDIS_URL === undefined ? {} : { redis: process.env.REDIS_URL }),
      ...(process.env.REDIS_PREFIX === undefined ? {} : { redisPrefix: process.env.REDIS_PREFIX })
    },
    stocks: {
      ...(process.env.PRICE_API_URL === undefined ? {} : { priceApiUrl: process.env.PRICE_API_URL }),
      // The bundled price API fails now and then, so the ticker shows an upstream-error event.
      failureRate: 0.05
    },
    // Without it, the bundled mock of an OpenAI-compatible API answers, on loopback: no network, no key.
    llm: process.env.LLM_UPSTREAM_URL === undefined ? {} : { upstreamUrl: process.env.LLM_UPSTREAM_URL }
  })
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      app.log.info({ signal }, 'closing: every stream ends with a retry hint, so browsers come back')
      shutdown(app).then(() => process.exit(0), err => {
        app.log.error({ err }, 'close failed')
        process.exit(1)
      })
    })
  }
  await app.listen({ port: Number(process.env.PORT ?? 3000), host: process.env.HOST ?? 'localhost' })
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await main()
}
