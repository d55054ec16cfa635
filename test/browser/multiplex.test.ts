import t from 'tap'
import { buildApp } from '../fixtures/app.js'
import { launchChromium } from '../fixtures/chromium.js'
import { urlOf } from '../fixtures/http.js'
import { servePage } from '../fixtures/page-streams.js'
import { until } from '../fixtures/wait.js'

// Over plain HTTP/1.1 a browser gives an origin six connections: ten panels with a stream each leave
// four waiting (test/browser/http2.test.ts shows it). On one multiplexed stream, ten panels all live,
// and a second page on the same origin still has connections to spare.

const PANELS = Array.from({ length: 10 }, (_, i) => `panel-${i}`)

declare global { interface Window { panels?: Record<string, string[]>, panelSource?: EventSource } }

t.test('ten panels on one HTTP/1.1 stream all receive their events, and the next page still connects', async t => {
  t.setTimeout(30_000)
  const { app } = await buildApp(t, { heartbeat: false })
  servePage(app)
  const versions: string[] = []
  app.get('/panels', (request, reply) => {
    versions.push(request.raw.httpVersion)
    return reply.sse(app.sse.multiplex(PANELS))
  })
  const url = await urlOf(app)
  const browser = await launchChromium(t)
  if (browser === null) return
  const pages = [await browser.newPage(), await browser.newPage()]
  for (const page of pages) {
    await page.goto(url + '/')
    await page.evaluate(panels => {
      window.panels = Object.fromEntries(panels.map(name => [name, []]))
      window.panelSource = new EventSource('/panels')
      for (const name of panels) window.panelSource.addEventListener(name, event => { window.panels![name]!.push(event.data) })
    }, PANELS)
  }
  await until(() => app.sse.channel('panel-9').size === 2, 10_000, 'both pages subscribed to every panel')
  t.same(versions, ['1.1', '1.1'], 'plain HTTP/1.1: one connection per page')
  for (const [i, name] of PANELS.entries()) await app.sse.channel(name).publish(`reading ${i}`)
  for (const page of pages) {
    await until(async () => (await page.evaluate(() => Object.values(window.panels!).every(events => events.length === 1))),
      10_000, 'every panel of the page to receive its event')
    t.same(await page.evaluate(() => window.panels), Object.fromEntries(PANELS.map((name, i) => [name, [`reading ${i}`]])),
      'each of the ten panels got its own event')
  }
  // The page has five of its six connections to spare: five more streams open beside it, none waits.
  await pages[0]!.evaluate(() => { for (let i = 0; i < 5; i++) new EventSource('/panels') }) // eslint-disable-line no-new
  await until(() => app.sse.channel('panel-0').size === 7, 10_000, 'five more streams from the first page')
})
