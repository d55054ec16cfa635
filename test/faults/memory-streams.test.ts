import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { buildApp } from '../fixtures/app.js'
import { closeApp, urlOf } from '../fixtures/http.js'
import { seeded } from '../fixtures/random.js'
import { until } from '../fixtures/wait.js'
import { channelRecords, check, summary } from './checker.js'
import { Client } from './clients.js'
import { Generations, Reader, type Generation } from './generations.js'
import { Producer } from './producer.js'
import { checkGenerations, resumableSummary } from './resumable-checker.js'

// Issue 11, in memory: the fault suite's readers of multiplexed and resumable streams on one app
// without Redis, leaving and resuming at random (no fault to inject: the only disruption is the
// clients' own comings and goings). Multiplexed clients get each channel's events once, in order,
// with no gap; every reader of a generation gets each token once, in order, then its end (done), and
// is told to stop (204).

const SEED = Number(process.env.SSE_FAULTS_SEED ?? process.env.SEED ?? Math.floor(Math.random() * 2 ** 32))
const random = seeded(SEED)
const CHANNELS = ['ticks', 'tocks']
const CLIENTS = 40
const GENERATIONS = 6
const READERS = 3
const TOKENS = 200
const PACE_MS = 10
const FLOW_MS = 6000
const SETTLE_MS = 15_000

t.test('in memory, readers of multiplexed and resumable streams leaving and coming back at random get everything once, in order', async t => {
  t.comment(`seed ${SEED} (SSE_FAULTS_SEED=${SEED} replays it)`)
  const { app } = await buildApp(t, { history: 100_000, retry: 50 })
  const generations = new Generations({ tokens: TOKENS, paceMs: PACE_MS })
  app.get('/' + CHANNELS[0], (request, reply) => reply.sse(app.sse.channel(CHANNELS[0]!).subscribe({ lastEventId: request.lastEventId })))
  app.get('/multiplexed', (_request, reply) => reply.sse(app.sse.multiplex(CHANNELS)))
  app.post<{ Params: { key: string } }>('/gen/:key', (request, reply) => {
    const generation = generations.get(request.params.key)!
    return reply.sse(app.sse.resumable(generation.key, generation.source('A'), { maxDuration: 20_000 }))
  })
  app.get<{ Params: { key: string } }>('/gen/:key', (request, reply) => reply.sseResume(request.params.key))
  const url = await urlOf(app)
  const balancer = { pick: () => url }

  const producers = CHANNELS.map((channel, n) => new Producer({
    targets: () => [{ name: 'A', channel: app.sse.channel(channel) }],
    intervalMs: random.int(5, 10) * (n + 1),
    keyPrefix: `${channel}:`
  }))
  for (const producer of producers) t.teardown(() => producer.abandon())
  const clients = Array.from({ length: CLIENTS }, (_, n) => n % 2 === 0
    ? new Client(`client ${n}`, balancer, seeded(SEED + n), { path: '/' + CHANNELS[0], stayMs: [300, 1500] })
    : new Client(`multiplexed client ${n}`, balancer, seeded(SEED + n), { path: '/multiplexed', stayMs: [300, 1500], channels: CHANNELS }))
  t.teardown(() => { for (const client of clients) client.stop() })
  const single = clients.filter((_, n) => n % 2 === 0)
  const multiplexed = clients.filter((_, n) => n % 2 === 1)

  for (const producer of producers) producer.start()
  for (const client of clients) client.start()
  const running: Array<{ generation: Generation, readers: Reader[] }> = []
  t.teardown(() => { for (const { readers } of running) for (const reader of readers) reader.stop() })
  for (let g = 0; g < GENERATIONS; g++) {
    const generation = generations.create()
    const response = await fetch(`${url}/gen/${generation.key}`, { method: 'POST' })
    t.equal(response.status, 200, `${generation.key} started`)
    await response.body?.cancel()
    const readers = Array.from({ length: READERS }, (_, n) => new Reader(`reader ${n}`, generation.key, balancer,
      seeded(SEED + 1000 + g * READERS + n), { stayMs: [200, 1000], confirmMs: 5000 }))
    for (const reader of readers) reader.start()
    running.push({ generation, readers })
    await sleep(FLOW_MS / GENERATIONS)
  }

  await Promise.all(producers.map(producer => producer.stop()))
  const [ticks, tocks] = producers as [Producer, Producer]
  const readers = running.flatMap(({ readers }) => readers)
  await until(() => single.every(client => client.lastSeq === ticks.ids.length - 1) &&
    multiplexed.every(client => client.lastSeqOf('ticks') === ticks.ids.length - 1 && client.lastSeqOf('tocks') === tocks.ids.length - 1) &&
    readers.every(reader => reader.finishedAt !== undefined), SETTLE_MS, 'every client and reader to catch up')
    .catch(err => { t.comment((err as Error).message) })
  for (const client of clients) client.stop()
  for (const reader of readers) reader.stop()

  const perChannel = multiplexed.map(client => channelRecords(client, CHANNELS))
  const phases = [{ at: 0, name: 'in memory' }]
  const verdicts = [
    ['ticks', check(ticks, [...single, ...perChannel.map(([first]) => first!)], [], phases)],
    ['tocks', check(tocks, perChannel.map(([, second]) => second!), [], phases)]
  ] as const
  for (const [channel, verdict] of verdicts) {
    t.comment(`${channel}: ${summary(verdict)}`)
    for (const examples of Object.values(verdict.examples)) for (const example of examples) t.comment(`  ${example}`)
    t.ok(verdict.published > 0 && verdict.delivered > 0, `${channel}: events were published and delivered`)
    t.same(verdict.counts, Object.fromEntries(Object.keys(verdict.counts).map(problem => [problem, 0])),
      `${channel}: each event once, in order, none lost, no gap notice`)
    t.equal(verdict.gaps, 0, `${channel}: no gap notice (in memory, nothing is lost)`)
  }
  const resumable = checkGenerations(running.map(({ generation, readers }) => ({ ...pick(generation), readers })),
    phases, { boundMs: 20_000 + 10_000, reasons: ['done'] })
  t.comment(resumableSummary(resumable))
  for (const examples of Object.values(resumable.examples)) for (const example of examples) t.comment(`  ${example}`)
  t.same(resumable.counts, Object.fromEntries(Object.keys(resumable.counts).map(problem => [problem, 0])),
    'every reader got each token once, in order, then the end (done), and was told to stop')
  t.equal(resumable.delivered, GENERATIONS * READERS * TOKENS, 'every token reached every reader')
  t.ok(clients.every(client => client.comebacks > 0) && readers.every(reader => reader.comebacks > 0), 'everyone left and came back')
  await closeApp(app)
})

function pick (generation: Generation) {
  const { key, startedAt, yielded, confirmed } = generation
  return { key, startedAt, yielded, confirmed }
}
