import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { connect } from 'node:net'
import { createInterface } from 'node:readline'
import { openStream } from '../../lib/testing.js'
import { build } from '../../examples/server.js'
import { answerTo } from '../../examples/llm/upstream.js'
import { EventSource } from 'eventsource'
import { EXIT_WITH_PARENT, nextEvents } from '../fixtures/examples.js'
import { closeApp } from '../fixtures/http.js'
import { REDIS_URL, redisAvailable, testClient, uniquePrefix } from '../fixtures/redis.js'

const fast = {
  basic: { intervalMs: 0 },
  headers: { intervalMs: 0 },
  formats: { intervalMs: 0 },
  sensors: { temperatureIntervalMs: 10, humidityIntervalMs: 10 },
  resume: { intervalMs: 0 },
  stocks: { intervalMs: 10 },
  broadcast: { intervalMs: 10 },
  llm: { tokenDelayMs: 0 }
}

t.test('importing the demo starts nothing: build() returns an app that is not listening', async t => {
  const app = await build(fast)
  t.teardown(() => app.close())
  await app.ready()
  t.equal(app.server.listening, false)
})

t.test('every finite example is reachable under its prefix', async t => {
  const app = await build(fast)
  t.teardown(() => app.close())
  const expected: Record<string, RegExp> = {
    '/basic/events': /^data: Event 0\n\n[^]*data: Event 4\n\n$/,
    '/headers/events': /^data: Event 0\n\n/,
    '/headers/plain': /^data: Event 0\n\n/,
    '/formats/events': /^: This is a comment\nretry: 10000\n\nid: 0\nevent: update\n/,
    '/resume/events': /^retry: 1000\n\nid: 1\ndata: Event 1\n\n/
  }
  for (const [url, body] of Object.entries(expected)) {
    const response = await app.inject({ url })
    t.equal(response.statusCode, 200, url)
    t.match(response.payload, body, url)
  }
})

t.test('every open example streams under its prefix', async t => {
  const app = await build(fast)
  t.teardown(() => closeApp(app))
  const sensors = await openStream(app, '/sensors/events')
  const [reading] = await sensors.take(1)
  await sensors.close()
  t.match(JSON.parse(reading?.data ?? ''), { temperature: Number, humidity: Number })
  const stocks = await openStream(app, '/stocks/events')
  const [round] = await stocks.take(1)
  await stocks.close()
  t.ok(round?.event === undefined || round.event === 'upstream-error', 'a round, from the demo\'s own price API')
  const weather = await openStream(app, '/broadcast/events')
  const [update] = await weather.take(1)
  await weather.close()
  t.match(JSON.parse(update?.data ?? ''), { temperature: Number, humidity: Number })
  t.ok(update?.id, 'a broadcast update has its channel id')
})

t.test('the LLM example streams under /llm from the demo\'s own mock upstream, and reads back by its id', async t => {
  const app = await build(fast)
  t.teardown(() => closeApp(app))
  const chat = await openStream(app, '/llm/chat', { method: 'POST', body: { prompt: 'hi' } })
  await chat.ended
  const text = chat.events.filter(event => event.event === 'token').map(event => JSON.parse(event.data).text).join('')
  t.equal(text, answerTo('hi').join(''), 'the bundled mock\'s answer, whole')
  t.equal(chat.events.at(-1)?.event, 'sse-end')
  const again = await openStream(app, '/llm/chat/' + chat.headers.get('x-generation-id'))
  await again.ended
  t.strictSame(again.events.map(event => event.data), chat.events.map(event => event.data), 'the same generation, read again')
})

t.test('the demo serves its OpenAPI 3.2 document: the weather stream\'s events are its itemSchema, and an update is one', async t => {
  const app = await build(fast)
  t.teardown(() => closeApp(app))
  const document = (await app.inject({ url: '/openapi.json' })).json()
  t.equal(document.openapi, '3.2.0')
  t.notOk(document.paths['/openapi.json'], 'the document does not list itself')
  const media = document.paths['/broadcast/events'].get.responses['200'].content['text/event-stream']
  const [update] = media.itemSchema.oneOf
  t.strictSame(update.properties.event, { const: 'message' })
  t.same(update.properties.data.contentSchema.required, ['temperature', 'humidity'])
  const Ajv = (await import('ajv')).default.default
  const ajv = new Ajv({ strict: false })
  const weather = await openStream(app, '/broadcast/events')
  const [event] = await weather.take(1)
  await weather.close()
  t.ok(ajv.validate(media.itemSchema, { id: event?.id, data: event?.data }), 'the update on the wire is an item of the document')
  t.ok(ajv.validate(update.properties.data.contentSchema, JSON.parse(event?.data ?? '')), 'its data matches its schema')
})

t.test('the dashboard page and its files are served at /', async t => {
  const app = await build(fast)
  t.teardown(() => app.close())
  const page = await app.inject({ url: '/' })
  t.equal(page.headers['content-type'], 'text/html; charset=utf-8')
  t.match(page.payload, '<script type="module" src="/dashboard.js">')
  const script = await app.inject({ url: '/dashboard.js' })
  t.equal(script.headers['content-type'], 'text/javascript; charset=utf-8')
  t.match(script.payload, 'new EventSource(url)')
  const style = await app.inject({ url: '/dashboard.css' })
  t.equal(style.headers['content-type'], 'text/css; charset=utf-8')
})

/** `examples/server.ts` as `npm start` runs it (through tsx), on a free loopback port; killed when the test ends. */
async function startMain (t: Test, env: Record<string, string>) {
  const child = spawn(process.execPath, ['--import', 'tsx', '--import', EXIT_WITH_PARENT, 'examples/server.ts'], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  const lines = createInterface({ input: child.stdout })
  let url: string | undefined
  for await (const line of lines) {
    const entry = JSON.parse(line)
    const match = /^Server listening at (http:\/\/127\.0\.0\.1:\d+)$/.exec(entry.msg)
    if (match !== null) {
      url = match[1]
      break
    }
  }
  // Keep reading (and dropping) its logs so a full pipe never blocks it.
  child.stdout.resume()
  const stop = async (): Promise<number | null> => {
    const exited = once(child, 'exit')
    child.kill('SIGTERM')
    const [code] = await exited
    return code
  }
  return { url, stop }
}

t.test('run as the main module it listens on PORT and HOST, logs JSON lines, and closes on SIGTERM', async t => {
  const main = await startMain(t, {})
  t.ok(main.url, 'it says where it listens, in a JSON log line')
  const page = await fetch(main.url + '/')
  t.equal(page.status, 200)
  t.match(await page.text(), 'fastify-sse-stream')
  // A connection that never sends a request, as a browser's preconnect: it must not hold the exit.
  const { hostname, port } = new URL(main.url as string)
  const idle = connect(Number(port), hostname)
  idle.on('error', () => {})
  await once(idle, 'connect')
  const started = performance.now()
  t.equal(await main.stop(), 0, 'a clean exit')
  t.ok(performance.now() - started < 15_000, 'within the grace period, not after Node\'s 60 s headers timeout')
  idle.destroy()
})

t.test('run as the main module with REDIS_URL set, its channels go through Redis', async t => {
  if (!await redisAvailable(t)) return
  const prefix = uniquePrefix(t)
  const main = await startMain(t, { REDIS_URL, REDIS_PREFIX: prefix })
  const source = new EventSource(main.url + '/broadcast/events')
  t.teardown(() => source.close())
  const [update] = await nextEvents(source, 'message', 1, 20_000)
  source.close()
  t.ok(update?.lastEventId, `a broadcast update, id ${update?.lastEventId}`)
  const keys = await testClient(t).keys(prefix + '*')
  t.ok(keys.length > 0, `the weather channel lives in Redis: ${keys.join(', ')}`)
  t.equal(await main.stop(), 0, 'a clean exit')
})
