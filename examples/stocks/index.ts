// 6. stocks: a stream fed by another HTTP API.
//
//   curl -N http://localhost:3000/stocks/events
//
// Every round fetches the price of each symbol concurrently (`Promise.all`, the tutorial's
// `asyncio.gather`) and sends one event with all of them, then waits `intervalMs`:
//
//   data: {"AAPL":150.31,"GOOGL":2748.12,"MSFT":305.9}
//
// When a round fails (the API answers an error, is unreachable, or is slower than `timeoutMs`), the
// stream does not end: it sends the error as an event of its own type and tries again next round.
//
//   event: upstream-error
//   data: {"message":"GOOGL: the price API answered 503"}
//
// A browser reads it with `source.addEventListener('upstream-error', ...)`; `onmessage` never sees it.
// Every fetch listens to the stream's AbortSignal: a client that leaves cancels the requests still
// in flight, instead of the server waiting on answers nobody will read.
//
// With `channel`, one producer also runs the rounds for the life of the app and publishes them to that
// channel: the dashboard reads it with the other panels' channels on one stream (../dashboard.ts).
//
// Without `priceApiUrl`, the plugin runs the bundled price server (./price-server.ts) on a loopback
// port of its own while the app is up.
import { setTimeout as sleep } from 'node:timers/promises'
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyPluginAsync, type FastifyServerOptions } from 'fastify'
import ssePlugin from '../../lib/index.js'
import { publishFrom } from '../producer.js'
import { buildPriceServer } from './price-server.js'

export interface StocksOptions {
  /** Base URL of the price API (`GET <url>/stock/:symbol -> { price }`). @default the bundled price server */
  priceApiUrl?: string
  /** @default ['AAPL', 'GOOGL', 'MSFT'] */
  symbols?: string[]
  /** Pause between rounds, in ms. @default 5000 */
  intervalMs?: number
  /** How long a round may wait for the API, in ms. @default 2000 */
  timeoutMs?: number
  /** Share of the bundled price server's requests that fail, to see upstream-error events. @default 0 */
  failureRate?: number
  /**
   * Also publish rounds to this channel, from one producer for the life of the app (the dashboard's
   * stream reads it); /events keeps its rounds per client. @default none
   */
  channel?: string
}

export type Prices = Record<string, number>
/** What a round sends: every price, or why there are none this time. */
export type Round = { data: Prices } | { event: 'upstream-error', data: { message: string } }

export async function fetchPrice (priceApiUrl: string, symbol: string, signal: AbortSignal): Promise<number> {
  const url = new URL(`stock/${encodeURIComponent(symbol)}`, priceApiUrl.endsWith('/') ? priceApiUrl : priceApiUrl + '/')
  const response = await fetch(url, { signal })
  if (!response.ok) throw new Error(`${symbol}: the price API answered ${response.status}`)
  const body = await response.json() as { price?: unknown }
  if (typeof body.price !== 'number') throw new Error(`${symbol}: the price API sent no price`)
  return body.price
}

interface RoundsOptions {
  priceApiUrl: string
  symbols: string[]
  intervalMs: number
  timeoutMs: number
  signal: AbortSignal
  log: FastifyBaseLogger
}

function describe (err: unknown, timeoutMs: number): string {
  const error = err as Error & { cause?: { code?: string } }
  if (error.name === 'TimeoutError') return `the price API did not answer within ${timeoutMs} ms`
  // fetch() says only "fetch failed"; the reason (ECONNREFUSED...) is in its cause.
  return error.cause?.code === undefined ? error.message : `${error.message} (${error.cause.code})`
}

export async function * priceRounds (options: RoundsOptions): AsyncGenerator<Round> {
  const { priceApiUrl, symbols, intervalMs, timeoutMs, signal, log } = options
  while (true) {
    // Aborted by the client leaving, by the round's deadline, or by a sibling fetch failing.
    const round = new AbortController()
    const roundSignal = AbortSignal.any([signal, round.signal, AbortSignal.timeout(timeoutMs)])
    let prices: number[] | undefined
    let failure: unknown
    try {
      prices = await Promise.all(symbols.map(symbol => fetchPrice(priceApiUrl, symbol, roundSignal)))
    } catch (err) {
      failure = err
    } finally {
      round.abort()
    }
    if (signal.aborted) return
    if (prices !== undefined) {
      yield { data: Object.fromEntries(symbols.map((symbol, i) => [symbol, prices[i] as number])) }
    } else {
      log.warn({ err: failure }, 'price round failed')
      yield { event: 'upstream-error', data: { message: describe(failure, timeoutMs) } }
    }
    await sleep(intervalMs, undefined, { signal })
  }
}

export const stocks: FastifyPluginAsync<StocksOptions> = async function stocks (app, opts) {
  const symbols = opts.symbols ?? ['AAPL', 'GOOGL', 'MSFT']
  const intervalMs = opts.intervalMs ?? 5000
  const timeoutMs = opts.timeoutMs ?? 2000
  let priceApiUrl = opts.priceApiUrl

  if (priceApiUrl === undefined) {
    const priceServer = await buildPriceServer({
      // A request every few seconds per symbol is not worth a log line each: warnings only.
      loggerInstance: app.log.child({ service: 'price-api' }, { level: 'warn' }),
      failureRate: opts.failureRate ?? 0
    })
    // Up with the app, down with it; on a port of its own, so `build()` itself never listens.
    app.addHook('onReady', async () => {
      priceApiUrl = await priceServer.listen({ port: 0, host: '127.0.0.1' })
    })
    app.addHook('onClose', () => priceServer.close())
  }

  app.get('/events', (request, reply) => reply.sse(({ signal }) => priceRounds({
    priceApiUrl: priceApiUrl as string, symbols, intervalMs, timeoutMs, signal, log: request.log
  })))

  if (opts.channel !== undefined) {
    // Its onReady runs after the price server's: the URL is known by then.
    publishFrom(app, app.sse.channel<Round>(opts.channel), (signal, log) => priceRounds({
      priceApiUrl: priceApiUrl as string, symbols, intervalMs, timeoutMs, signal, log
    }))
  }
}

export async function build (opts: StocksOptions & { logger?: FastifyServerOptions['logger'] } = {}): Promise<FastifyInstance> {
  const app = Fastify({ logger: opts.logger ?? false })
  await app.register(ssePlugin)
  await app.register(stocks, opts)
  return app
}
