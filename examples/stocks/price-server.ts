// The stocks example's upstream: a tiny price API, because the tutorial's https://api.example.com
// is not reachable here (nothing outside is). GET /stock/:symbol -> { symbol, price }, each price a
// random walk from a plausible start.
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'

export interface PriceServerOptions {
  /** Symbols served and their opening prices. */
  prices?: Record<string, number>
  /** Share of requests answered 503, to see upstream errors in the demo. @default 0 */
  failureRate?: number
  logger?: FastifyServerOptions['logger']
  /** A pino logger to log with (instead of `logger`). */
  loggerInstance?: FastifyServerOptions['loggerInstance']
}

export const OPENING_PRICES: Readonly<Record<string, number>> = { AAPL: 150.25, GOOGL: 2750.8, MSFT: 305.15, AMZN: 178.5, TSLA: 242.1 }

export async function buildPriceServer (opts: PriceServerOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    ...(opts.loggerInstance === undefined ? { logger: opts.logger ?? false } : { loggerInstance: opts.loggerInstance }),
    // Every answer is short, so on close no connection is worth waiting for; and a socket a client
    // opened without sending a request (undici does after an aborted fetch) would otherwise hold
    // close() until Node's headers timeout, a minute later.
    forceCloseConnections: true
  })
  const prices = new Map(Object.entries(opts.prices ?? OPENING_PRICES))
  const failureRate = opts.failureRate ?? 0

  app.get<{ Params: { symbol: string } }>('/stock/:symbol', async (request, reply) => {
    const { symbol } = request.params
    const last = prices.get(symbol)
    if (last === undefined) return reply.code(404).send({ message: `unknown symbol ${symbol}` })
    if (Math.random() < failureRate) return reply.code(503).send({ message: 'price feed unavailable, try again' })
    // A step of up to ±0.5 %, in cents.
    const price = Math.round(last * (1 + (Math.random() - 0.5) / 100) * 100) / 100
    prices.set(symbol, price)
    return { symbol, price }
  })
  return app
}
