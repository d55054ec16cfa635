// One producer for the life of an app: a source of values started when the app is ready, each value
// published to a channel, stopped before the app closes. The sensors and stocks examples use it to
// feed the dashboard's one stream (./dashboard.ts), where every viewer reads the same readings
// instead of running generators of their own. With Redis every instance runs its own (as for the
// broadcast example): run it on one, or publish from wherever the data really comes from.
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'

/** What the producer needs of a channel. */
interface Target<T> { readonly name: string, publish (value: T): Promise<string> }

/**
 * Publish every value `produce(signal)` yields to `channel`, from `onReady` until the app closes
 * (the signal aborts first thing in `preClose`, before the channels close).
 */
export function publishFrom<T> (app: FastifyInstance, channel: Target<T>,
  produce: (signal: AbortSignal, log: FastifyBaseLogger) => AsyncIterable<T>): void {
  const log = app.log.child({ channel: channel.name })
  const stop = new AbortController()
  let running: Promise<void> | undefined
  app.addHook('onReady', async () => {
    // Not awaited: it runs for the life of the app.
    running = run(channel, produce(stop.signal, log), stop.signal, log)
  })
  app.addHook('preClose', async () => {
    stop.abort()
    await running
  })
}

async function run<T> (channel: Target<T>, values: AsyncIterable<T>, signal: AbortSignal,
  log: FastifyBaseLogger): Promise<void> {
  log.info('producer started')
  try {
    for await (const value of values) {
      try {
        await channel.publish(value)
      } catch (err) {
        // Redis unreachable, say: this value is lost, the next one may get through.
        log.warn({ err }, 'value not published')
      }
    }
  } catch (err) {
    // A sleep aborted by the stop is the normal way out; anything else is worth a line.
    if (!signal.aborted) log.error({ err }, 'producer failed')
  } finally {
    log.info('producer stopped')
  }
}
