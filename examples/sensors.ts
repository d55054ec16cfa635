// 4. sensors: two async generators combined into one stream.
//
//   curl -N http://localhost:3000/sensors/events
//
// Each sensor is an async generator that yields a reading, then sleeps. `readings()` pulls one value
// from each at once (`Promise.all` of their `next()`: the tutorial's `asyncio.gather` of `anext`),
// so each combined event waits for the slower sensor. Every sleep listens to the stream's
// AbortSignal: when the client leaves, the sleeps reject at once and every `finally` runs, instead
// of a sensor sleeping on for seconds after nobody is listening.
//
// With `channel`, one more pair of sensors runs for the life of the app and publishes to that
// channel: the dashboard reads it with the other panels' channels on one stream (./dashboard.ts).
import { setTimeout as sleep } from 'node:timers/promises'
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyPluginAsync, type FastifyServerOptions } from 'fastify'
import ssePlugin from '../lib/index.js'
import { publishFrom } from './producer.js'

export interface SensorsOptions {
  /** Pause between temperature readings, in ms. @default 2000 */
  temperatureIntervalMs?: number
  /** Pause between humidity readings, in ms. @default 3000 */
  humidityIntervalMs?: number
  /** Combined readings sent before the stream ends. @default Infinity */
  count?: number
  /**
   * Also publish readings to this channel, from one pair of sensors for the life of the app (the
   * dashboard's stream reads it); /events keeps its sensors per client. @default none
   */
  channel?: string
}

export interface Reading {
  temperature: number
  humidity: number
}

interface SensorOptions {
  intervalMs: number
  signal: AbortSignal
  log: FastifyBaseLogger
}

/** A random value in [min, max), rounded to two decimals like the tutorial's `{temp:.2f}`. */
function uniform (min: number, max: number): number {
  return Math.round((min + Math.random() * (max - min)) * 100) / 100
}

/** A sensor: a reading between `min` and `max` now, then one after every pause, until the signal aborts. */
async function * sensor (name: string, min: number, max: number,
  { intervalMs, signal, log }: SensorOptions): AsyncGenerator<number> {
  try {
    while (true) {
      yield uniform(min, max)
      await sleep(intervalMs, undefined, { signal })
    }
  } finally {
    log.info({ sensor: name }, 'sensor stopped')
  }
}

export const temperature = (options: SensorOptions) => sensor('temperature', 20, 30, options)
export const humidity = (options: SensorOptions) => sensor('humidity', 30, 60, options)

/** Both sensors, one `{ temperature, humidity }` per round. */
export async function * readings (temperatures: AsyncGenerator<number>, humidities: AsyncGenerator<number>,
  count = Infinity): AsyncGenerator<Reading> {
  try {
    for (let i = 0; i < count; i++) {
      const [t, h] = await Promise.all([temperatures.next(), humidities.next()])
      if (t.done === true || h.done === true) return
      yield { temperature: t.value, humidity: h.value }
    }
  } finally {
    // Whichever sensor is still open (paused at its yield) is closed here; one that threw is done.
    await Promise.allSettled([temperatures.return(undefined), humidities.return(undefined)])
  }
}

export const sensors: FastifyPluginAsync<SensorsOptions> = async function sensors (app, opts) {
  const temperatureIntervalMs = opts.temperatureIntervalMs ?? 2000
  const humidityIntervalMs = opts.humidityIntervalMs ?? 3000

  app.get('/events', (request, reply) => reply.sse(({ signal }) => readings(
    temperature({ intervalMs: temperatureIntervalMs, signal, log: request.log }),
    humidity({ intervalMs: humidityIntervalMs, signal, log: request.log }),
    opts.count
  )))

  if (opts.channel !== undefined) {
    publishFrom(app, app.sse.channel<Reading>(opts.channel), (signal, log) => readings(
      temperature({ intervalMs: temperatureIntervalMs, signal, log }),
      humidity({ intervalMs: humidityIntervalMs, signal, log })
    ))
  }
}

export async function build (opts: SensorsOptions & { logger?: FastifyServerOptions['logger'] } = {}): Promise<FastifyInstance> {
  const app = Fastify({ logger: opts.logger ?? false })
  await app.register(ssePlugin)
  await app.register(sensors, opts)
  return app
}
