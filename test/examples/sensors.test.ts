import t, { type Test } from 'tap'
import { openStream } from '../../lib/testing.js'
import { build, humidity, readings, temperature } from '../../examples/sensors.js'
import { closeApp } from '../fixtures/http.js'
import { collectLogs, logsOf } from '../fixtures/logs.js'

function checkReading (t: Test, data: string): void {
  const reading = JSON.parse(data)
  t.same(Object.keys(reading), ['temperature', 'humidity'])
  t.ok(reading.temperature >= 20 && reading.temperature <= 30, `temperature ${reading.temperature} in 20-30`)
  t.ok(reading.humidity >= 30 && reading.humidity <= 60, `humidity ${reading.humidity} in 30-60`)
}

t.test('streams { temperature, humidity } readings combined from the two sensors', async t => {
  const app = await build({ temperatureIntervalMs: 5, humidityIntervalMs: 10, count: 3 })
  t.teardown(() => app.close())
  const response = await app.inject({ url: '/events' })
  const frames = response.payload.split('\n\n').filter(frame => frame !== '')
  t.equal(frames.length, 3)
  for (const frame of frames) {
    t.match(frame, /^data: \{/)
    checkReading(t, frame.slice('data: '.length))
  }
})

t.test('each combined reading waits for the slower sensor, as gather/anext does', async t => {
  const app = await build({ temperatureIntervalMs: 1, humidityIntervalMs: 50, count: 3 })
  t.teardown(() => app.close())
  const started = performance.now()
  await app.inject({ url: '/events' })
  const elapsed = performance.now() - started
  t.ok(elapsed >= 2 * 50 - 5, `two humidity pauses of 50 ms passed (${Math.round(elapsed)} ms)`)
})

t.test('a client that leaves stops both sensors at once: every finally runs', async t => {
  const log = collectLogs()
  const app = await build({ temperatureIntervalMs: 60_000, humidityIntervalMs: 60_000, logger: { stream: log.stream } })
  t.teardown(() => closeApp(app))
  const stream = await openStream(app, '/events')
  const [first] = await stream.take(1)
  checkReading(t, first?.data ?? '')
  const started = performance.now()
  await stream.close()
  t.ok(performance.now() - started < 5000, 'long before the 60 s sleeps would have ended')
  const stopped = logsOf(log.lines, 'sensor stopped').map(line => line.sensor)
  t.same(stopped.sort(), ['humidity', 'temperature'])
  const [ended] = logsOf(log.lines, 'sse stream ended')
  t.equal(ended?.reason, 'client-gone')
})

/** Both sensors, combined, with the names of those whose finally ran. */
function bothSensors (temperatureIntervalMs: number, humidityIntervalMs: number) {
  const controller = new AbortController()
  const stopped: string[] = []
  const log = { info: (obj: { sensor: string }) => { stopped.push(obj.sensor) } } as never
  const both = readings(
    temperature({ intervalMs: temperatureIntervalMs, signal: controller.signal, log }),
    humidity({ intervalMs: humidityIntervalMs, signal: controller.signal, log })
  )
  return { both, controller, stopped }
}

t.test('aborting the signal mid-sleep ends readings() and runs both sensors\' finally', async t => {
  const { both, controller, stopped } = bothSensors(60_000, 30_000)
  t.ok((await both.next()).value, 'the first reading comes at once')
  const second = both.next()
  controller.abort()
  await t.rejects(second, { name: 'AbortError' })
  t.same(stopped.sort(), ['humidity', 'temperature'])
})

t.test('closing readings() while it waits at a yield closes both sensors', async t => {
  const { both, stopped } = bothSensors(60_000, 60_000)
  await both.next()
  await both.return(undefined)
  t.same(stopped.sort(), ['humidity', 'temperature'])
})

t.test('with a channel, one pair of sensors publishes to it for the life of the app, and stops when the app closes', async t => {
  const log = collectLogs()
  const app = await build({ temperatureIntervalMs: 5, humidityIntervalMs: 5, channel: 'readings', logger: { stream: log.stream } })
  t.teardown(() => closeApp(app))
  await app.ready()
  const published: unknown[] = []
  for await (const message of app.sse.channel('readings').subscribe()) {
    published.push(message.data)
    if (published.length === 3) break
  }
  t.match(published, [{ temperature: Number, humidity: Number }, { temperature: Number }, { temperature: Number }])
  t.equal(logsOf(log.lines, 'sensor stopped').length, 0, 'no client, and the sensors run')
  await app.close()
  t.same(logsOf(log.lines, 'sensor stopped').map(line => line.sensor).sort(), ['humidity', 'temperature'])
  t.match(logsOf(log.lines, 'producer stopped'), [{ channel: 'readings' }])
})
