import t from 'tap'
import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import type { FastifyInstance } from 'fastify'
import { chromium, type Page } from 'playwright-core'
import { build, shutdown } from '../../examples/server.js'
import { answerTo, buildUpstream } from '../../examples/llm/upstream.js'
import { launchChromium } from '../fixtures/chromium.js'
import { urlOf } from '../fixtures/http.js'
import { requireService } from '../fixtures/services.js'
import { until } from '../fixtures/wait.js'

// The dashboard in a real browser: Debian's Chromium, driven by playwright-core (never a download).

const CHROMIUM = '/usr/bin/chromium'
const ARTIFACTS = new URL('../artifacts/', import.meta.url)

const demo = (llm: { upstreamUrl?: string } = {}): Promise<FastifyInstance> => build({
  // Browsers come back within ~0.3-1.3 s of a restart instead of 3-6 s.
  sse: { retry: 300 },
  sensors: { temperatureIntervalMs: 150, humidityIntervalMs: 200 },
  stocks: { intervalMs: 300 },
  broadcast: { intervalMs: 200 },
  llm
})

const states = (page: Page) => page.$$eval('.state', badges => badges.map(badge => (badge as HTMLElement).dataset.state))

/** Wait until the connection's badge shows `state`. */
const allStreams = (page: Page, state: string) => page.waitForFunction(
  expected => [...document.querySelectorAll<HTMLElement>('.state')].every(badge => badge.dataset.state === expected),
  state, { timeout: 15_000 })

/** Wait until the text of `selector` is a number other than `previous`, and return it. */
async function nextNumber (page: Page, selector: string, previous?: string): Promise<string> {
  const handle = await page.waitForFunction(([selector, previous]) => {
    const text = document.querySelector(selector)?.textContent ?? ''
    return /^\d+\.\d\d$/.test(text) && text !== previous ? text : false
  }, [selector, previous] as const, { timeout: 15_000 })
  return await handle.jsonValue() as string
}

const prices = (page: Page) => page.$$eval('#ticker tr', rows => rows.map(row => [
  (row as HTMLTableRowElement).cells[0]?.textContent, (row as HTMLTableRowElement).cells[1]?.textContent
]))

t.test('the dashboard shows live readings, prices and weather on ONE stream, and its state across a server restart',
  async t => {
    if (!requireService(t, 'Chromium', existsSync(CHROMIUM) ? null : `no executable at ${CHROMIUM} (apt-get install chromium)`)) return
    let app = await demo()
    const url = await urlOf(app)
    const port = Number(new URL(url).port)
    t.teardown(() => shutdown(app))

    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic',
        '--no-first-run', '--disable-component-update', '--disable-sync']
    })
    t.teardown(() => browser.close())
    const page = await browser.newPage({ viewport: { width: 1200, height: 1100 } })
    const errors: string[] = []
    page.on('pageerror', err => errors.push(err.message))
    // Every request the page makes for an event stream, whatever its URL.
    const streams: string[] = []
    page.on('request', request => {
      if ((request.headers().accept ?? '').includes('text/event-stream')) streams.push(new URL(request.url()).pathname)
    })
    await page.goto(url + '/')

    await allStreams(page, 'connected')
    t.same(await states(page), ['connected'], 'one connection badge, connected')

    const temperature = await nextNumber(page, '#temperature')
    t.ok(Number(temperature) >= 20 && Number(temperature) <= 30, `a temperature arrived: ${temperature}`)
    const humidity = await nextNumber(page, '#humidity')
    t.ok(Number(humidity) >= 30 && Number(humidity) <= 60, `a humidity arrived: ${humidity}`)
    const nextTemperature = await nextNumber(page, '#temperature', temperature)
    t.not(nextTemperature, temperature, `and it updates: ${temperature} -> ${nextTemperature}`)

    await page.waitForFunction(() => document.querySelectorAll('#ticker tr').length === 3, undefined, { timeout: 15_000 })
    const before = await prices(page)
    t.same(before.map(([symbol]) => symbol), ['AAPL', 'GOOGL', 'MSFT'])
    t.ok(before.every(([, price]) => /^\d+\.\d\d$/.test(price ?? '')), `prices arrived: ${JSON.stringify(before)}`)
    await page.waitForFunction(previous => JSON.stringify([...document.querySelectorAll<HTMLTableRowElement>('#ticker tr')]
      .map(row => [row.cells[0]?.textContent, row.cells[1]?.textContent])) !== previous,
    JSON.stringify(before), { timeout: 15_000 })
    t.pass(`prices update: ${JSON.stringify(await prices(page))}`)

    const broadcastId = await page.waitForFunction(() => {
      const id = document.getElementById('broadcast-id')?.textContent ?? ''
      return /^\d/.test(id) ? id : false
    }, undefined, { timeout: 15_000 })
    const firstId = await broadcastId.jsonValue() as string
    const broadcastTemperature = await nextNumber(page, '#broadcast-temperature')
    await page.waitForFunction(previous => document.getElementById('broadcast-id')?.textContent !== previous,
      firstId, { timeout: 15_000 })
    t.pass(`broadcast updates arrive (${broadcastTemperature} °C, id ${firstId}) and update`)
    const lastUpdates = await page.$$eval('.updated-at', spans => spans.map(span => [(span as HTMLElement).dataset.panel, span.textContent]))
    t.same(lastUpdates.map(([panel]) => panel), ['sensors', 'stocks', 'weather'])
    t.ok(lastUpdates.every(([, time]) => /\d:\d\d/.test(time ?? '')), `each panel says when it was last updated: ${JSON.stringify(lastUpdates)}`)
    t.same(streams, ['/dashboard/events'], 'the three panels were fed by exactly one event-stream request')

    // Enough readings for the chart to have lines worth looking at.
    await page.waitForFunction(() => (document.querySelector('#chart polyline.temperature')?.getAttribute('points') ?? '')
      .split(' ').length >= 12, undefined, { timeout: 15_000 })
    await mkdir(ARTIFACTS, { recursive: true })
    await page.screenshot({ path: new URL('dashboard.png', ARTIFACTS).pathname, fullPage: true })

    // As `npm start` stops on SIGTERM. The port is free as soon as the server stops listening, even
    // while the close waits out connections the browser may hold.
    const stopped = app
    const closing = shutdown(stopped)
    await allStreams(page, 'reconnecting')
    t.pass('every stream shows reconnecting once the server is gone')
    await page.screenshot({ path: new URL('dashboard-reconnecting.png', ARTIFACTS).pathname, fullPage: true })

    await until(() => !stopped.server.listening, 15_000, 'the stopped server to free its port')
    app = await demo()
    await app.listen({ port, host: '127.0.0.1' })
    await closing
    await allStreams(page, 'connected')
    t.pass('and connected again once it is back on the same port')
    const afterRestart = await nextNumber(page, '#temperature', await page.textContent('#temperature') ?? undefined)
    t.ok(afterRestart, `readings flow again: ${afterRestart}`)
    // The new server's in-memory channel never had the ids the page saw: it says so.
    await page.waitForSelector('#broadcast-gap:not([hidden])', { timeout: 15_000 })
    t.match(await page.textContent('#broadcast-gap'), /are gone/, 'the broadcast panel reports the updates lost with the restart')
    await page.screenshot({ path: new URL('dashboard-restarted.png', ARTIFACTS).pathname, fullPage: true })
    t.same(errors, [], 'no script error on the page')
  })

t.test('the LLM panel streams a generation as it comes, a reload resumes it after its last id, and Cancel stops it', async t => {
  t.setTimeout(90_000)
  // Slow enough to reload mid-answer: about 30 words, 150 ms apart.
  const mock = await buildUpstream({ tokenDelayMs: 150 })
  const upstreamUrl = await mock.server.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => mock.server.close())
  const app = await demo({ upstreamUrl })
  const url = await urlOf(app)
  t.teardown(() => shutdown(app))
  const browser = await launchChromium(t)
  if (browser === null) return
  const page = await browser.newPage({ viewport: { width: 1200, height: 1100 } })
  const errors: string[] = []
  page.on('pageerror', err => errors.push(err.message))
  const resumes: Array<string | undefined> = []
  page.on('request', request => {
    if (request.method() === 'GET' && new URL(request.url()).pathname.startsWith('/llm/chat/')) resumes.push(request.headers()['last-event-id'])
  })
  await page.goto(url + '/')

  const prompt = 'Tell me about streams'
  const expected = answerTo(prompt).join('')
  await page.fill('#llm-prompt', prompt)
  await page.click('#llm-send')
  const words = (count: number) => page.waitForFunction(count => {
    const text = document.getElementById('llm-answer')?.textContent ?? ''
    return text.split(' ').length > count ? text : false
  }, count, { timeout: 15_000 })
  const before = await (await words(5)).jsonValue() as string
  t.equal(await page.textContent('#llm-state'), 'streaming')
  t.ok(expected.startsWith(before), `tokens arrive as they come: ${JSON.stringify(before)}`)
  t.equal(mock.requests[0]?.completed, false, 'the upstream is still answering: the reload comes mid-generation')

  await page.reload()
  const restored = await page.textContent('#llm-answer') ?? ''
  t.ok(restored.startsWith(before), 'after the reload, the text so far is back at once')
  await page.waitForFunction(() => document.getElementById('llm-state')?.textContent === 'done', undefined, { timeout: 30_000 })
  t.equal(await page.textContent('#llm-answer'), expected, 'the whole answer, each word once: it went on, it did not start over')
  t.equal(mock.requests.length, 1, 'the upstream was asked once')
  t.ok(resumes.length > 0 && resumes.every(id => /^\d+-\d+$/.test(id ?? '')), `it resumed with the last id the page had: ${resumes.join(', ')}`)
  t.equal(await page.evaluate(() => sessionStorage.getItem('llm-generation')), null, 'a finished generation is forgotten')
  await mkdir(ARTIFACTS, { recursive: true })
  await page.screenshot({ path: new URL('dashboard-llm.png', ARTIFACTS).pathname, fullPage: true })

  await page.fill('#llm-prompt', 'Stop me')
  await page.click('#llm-send')
  await words(4)
  await page.click('#llm-cancel')
  await page.waitForFunction(() => document.getElementById('llm-state')?.textContent === 'cancelled', undefined, { timeout: 15_000 })
  await until(() => mock.requests[1]?.aborted === true, 5000, 'the upstream to see its request aborted')
  t.pass(`Cancel stopped it after ${mock.requests[1]!.chunks} of ${answerTo('Stop me').length} words, and the upstream was hung up on`)
  t.same(errors, [], 'no script error on the page')
})
