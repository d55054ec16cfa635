// 7. broadcast: one producer, every client, and nothing missed across a reconnect.
//
//   curl -N http://localhost:3000/broadcast/events
//   curl -N -H 'Last-Event-ID: <an id it sent>' http://localhost:3000/broadcast/events   # what you missed, then live
//
// A background task, started when the app is ready and stopped when it closes, publishes the weather
// to a channel every few seconds. Each client's stream is a subscription to that channel: every
// connected client receives every update, each one serialized once for all of them. The channel
// gives each update an id and keeps the last ones (the plugin's `history` option, 1000 by default),
// so a client that reconnects with Last-Event-ID first receives what it missed, then live updates.
// When its id is older than that history (or unknown, say after a restart without Redis) it gets an
// `sse-gap` event first, then the updates still kept.
//
// Its events are declared (`sseEvents()`): the update's schema types the producer's publish and the
// route's stream, serializes each update with fast-json-stringify (compiled once), refuses anything
// else, and documents the stream in the demo's OpenAPI 3.2 document (GET /openapi.json).
//
// The tutorial's version keeps a set of clients and writes to each in turn; here the plugin does that,
// with a bounded queue per client so a slow one cannot hold the others back. With the plugin's `redis`
// option the channel spans every instance sharing that Redis (then every instance runs a producer:
// run it on one, or publish from wherever the data really comes from).
import { setTimeout as sleep } from 'node:timers/promises'
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyPluginAsync, type FastifyServerOptions } from 'fastify'
import { Type, type Static } from 'typebox'
import ssePlugin, { type DeclaredChannel, type SsePluginOptions } from '../lib/index.js'
import { sseEvents } from '../lib/typebox.js'

export interface BroadcastOptions {
  /** Pause between weather updates, in ms. @default 5000 */
  intervalMs?: number
  /** @default 'weather' */
  channel?: string
}

export const WeatherUpdate = Type.Object({
  temperature: Type.Number({ description: 'Degrees Celsius' }),
  humidity: Type.Number({ description: 'Relative humidity, percent', minimum: 0, maximum: 100 })
}, { description: 'One weather update' })
export type Weather = Static<typeof WeatherUpdate>

/** The stream's events: updates, unnamed (the `message` event an EventSource's onmessage receives). */
export const WeatherEvents = sseEvents({ message: WeatherUpdate }, { description: 'Weather updates, as they are published' })

function uniform (min: number, max: number): number {
  return Math.round((min + Math.random() * (max - min)) * 100) / 100
}

/** Publish the weather every `intervalMs` until `signal` aborts. Never throws. */
async function produceWeather (channel: DeclaredChannel<{ message: Weather }>, intervalMs: number, signal: AbortSignal,
  log: FastifyBaseLogger): Promise<void> {
  log.info({ channel: channel.name }, 'weather producer started')
  try {
    while (!signal.aborted) {
      try {
        await channel.publish({ temperature: uniform(20, 30), humidity: uniform(30, 60) })
      } catch (err) {
        // Redis unreachable, say: this update is lost, the next one may get through.
        log.warn({ err, channel: channel.name }, 'weather update not published')
      }
      await sleep(intervalMs, undefined, { signal })
    }
  } catch {
    // The sleep was aborted: the app is closing.
  } finally {
    log.info({ channel: channel.name }, 'weather producer stopped')
  }
}

export const broadcast: FastifyPluginAsync<BroadcastOptions> = async function broadcast (app, opts) {
  const intervalMs = opts.intervalMs ?? 5000
  const weather = app.sse.channel(opts.channel ?? 'weather', { events: WeatherEvents })
  const stop = new AbortController()
  let producer: Promise<void> | undefined

  app.addHook('onReady', async () => {
    // Not awaited: it runs for the life of the app.
    producer = produceWeather(weather, intervalMs, stop.signal, app.log)
  })
  app.addHook('onClose', async () => {
    stop.abort()
    await producer
  })

  app.get('/events', { schema: { summary: 'The weather, live, to every client', response: { 200: WeatherEvents } } },
    (request, reply) => reply.sse(weather.subscribe({ lastEventId: request.lastEventId })))
}

export interface BuildOptions extends BroadcastOptions {
  logger?: FastifyServerOptions['logger']
  /** The plugin's options: with `redis`, the channel spans every app sharing that Redis. */
  sse?: SsePluginOptions
}

export async function build (opts: BuildOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({ logger: opts.logger ?? false })
  await app.register(ssePlugin, opts.sse ?? {})
  await app.register(broadcast, opts)
  return app
}
