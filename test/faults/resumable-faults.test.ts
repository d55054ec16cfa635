import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../fixtures/app.js'
import { closeApp, urlOf } from '../fixtures/http.js'
import { seeded } from '../fixtures/random.js'
import { ownRedis, redisServerAvailable, testClient } from '../fixtures/redis.js'
import { until } from '../fixtures/wait.js'
import type { Phase } from './checker.js'
import { Generations, Reader, type Generation } from './generations.js'
import { Injector } from './injector.js'
import { checkGenerations, RESUMABLE_PROBLEMS, resumableSummary } from './resumable-checker.js'

// Issue 11: resumable streams under the faults of the channels' suite. Generations (300 tokens, 20 ms
// apart) are started on app A or B through one Redis of the test's own, one every START_EVERY_MS; each
// has readers (real `eventsource` clients behind a balancer) that leave and resume with their
// Last-Event-ID on either app at random. Faults follow one another with generations running: Redis
// hangs past the command timeout, each app's subscriber then command connections killed around a
// token's publish, Redis crashing (kill -9) with a publish in flight and restarting with its
// append-only file, the app running a generation closed (and opened again). Then, per reader: each
// token at most once, in order, under one id for every reader; every token published received (no gap
// notice is due: nothing loses history here); an sse-end of an expected reason within maxDuration plus
// 10 s of the start, never a hang; a resume with the end's id answered 204.
//
// A token's publish that fails ends its generation with reason `error` (app.sse.resumable does not
// retry it), so most faults end the generations they hit: the end reasons seen are reported by phase.
//
// Seeded: `SSE_FAULTS_SEED=<n>` replays the choices (timing still varies).

const SEED = Number(process.env.SSE_FAULTS_SEED ?? process.env.SEED ?? Math.floor(Math.random() * 2 ** 32))
const random = seeded(SEED)
const TOKENS = 300
const PACE_MS = 20
const MAX_DURATION = 20_000
/** app.sse.resumable's readers give up this long after maxDuration. */
const END_GRACE = 10_000
/** Past the readers' own bound, how long a reader may take to be told to stop (204) on a loaded machine. */
const SLACK_MS = 10_000
const READERS = 4
const START_EVERY_MS: [number, number] = [800, 1500]
const RETRY_MS = 100
const PAUSE_MS: [number, number] = [2500, 3500]
const CRASH_DOWN_MS: [number, number] = [1000, 2500]
const DOWN_MS: [number, number] = [300, 1500]
const FLOW_MS: [number, number] = [2000, 3500]
/** Reasons a reader may end with here (nobody cancels; nothing runs past maxDuration). */
const REASONS = ['done', 'error', 'server-closing', 'lost']

interface RunningApp {
  readonly name: string
  readonly app: FastifyInstance
  readonly url: string
}

t.setTimeout(150_000)

if (await redisServerAvailable(t)) {
  t.test('under Redis and app faults, every reader of a resumable stream gets each token once, in order, then an end, and is told to stop', async t => {
    t.comment(`seed ${SEED} (SSE_FAULTS_SEED=${SEED} replays it)`)
    const redis = await ownRedis(t, { persistent: true })
    const admin = testClient(t, redis.url)
    const prefix = `sse-resumable-faults-${SEED}:`
    const started = Date.now()
    const phases: Phase[] = []
    const phase = (name: string): void => {
      phases.push({ at: Date.now(), name })
      t.comment(`${((Date.now() - started) / 1000).toFixed(1)} s: ${name}`)
    }
    const generations = new Generations({ tokens: TOKENS, paceMs: PACE_MS })

    const open = async (name: string): Promise<RunningApp> => {
      const { app } = await buildApp(t, { redis: redis.url, redisPrefix: prefix, history: 100_000, retry: RETRY_MS })
      app.post<{ Params: { key: string } }>('/gen/:key', (request, reply) => {
        const generation = generations.get(request.params.key)!
        return reply.sse(app.sse.resumable(generation.key, generation.source(name), { maxDuration: MAX_DURATION, ttl: 120_000 }))
      })
      app.get<{ Params: { key: string } }>('/gen/:key', (request, reply) => reply.sseResume(request.params.key))
      return { name, app, url: await urlOf(app) }
    }
    const up: RunningApp[] = [await open('A'), await open('B')]
    const balancer = { pick: (choice: typeof random) => up.length === 0 ? undefined : choice.pick(up).url }

    /** Generations started (their start answered 200), with their readers; starts refused, by status. */
    const running: Array<{ generation: Generation, readers: Reader[] }> = []
    const refused = new Map<string, number>()
    const starts = new AbortController()
    const start = async (): Promise<void> => {
      const generation = generations.create()
      const base = balancer.pick(random)
      let status = 'no app up'
      if (base !== undefined) {
        try {
          const response = await fetch(`${base}/gen/${generation.key}`, { method: 'POST', headers: { accept: 'text/event-stream' } })
          status = String(response.status)
          // The client that started it leaves at once: the generation goes on.
          await response.body?.cancel()
        } catch (err) {
          status = (err as Error).message
        }
      }
      if (status !== '200') {
        refused.set(status, (refused.get(status) ?? 0) + 1)
        return
      }
      const readers = Array.from({ length: READERS }, (_, n) => new Reader(`reader ${n}`, generation.key, balancer,
        seeded((SEED + running.length * 0x9e3779b9 + n) >>> 0), { stayMs: [300, 2000], confirmMs: 15_000 }))
      running.push({ generation, readers })
      for (const reader of readers) reader.start()
    }
    t.teardown(() => { for (const { readers } of running) for (const reader of readers) reader.stop() })
    const starter = (async () => {
      while (!starts.signal.aborted) {
        start().catch(() => {})
        await sleep(random.int(...START_EVERY_MS))
      }
    })()

    phase('warm-up')
    await sleep(random.int(...FLOW_MS))
    const injector = new Injector(redis, admin, prefix, generations)
    const killAll = async (kind: 'subscribers' | 'commands'): Promise<void> => {
      const connections = await injector.connections(up.length)
      t.equal(connections[kind].length, up.length, `one of the ${kind} per app`, { listed: connections.listed })
      await injector.aroundPublish('publish first', () => injector.kill(connections[kind]))
    }
    const faults: Array<[name: string, inject: () => Promise<unknown>]> = [
      ['CLIENT PAUSE ALL (Redis hangs past the command timeout)', () => injector.pause(random.int(...PAUSE_MS))],
      ['CLIENT KILL of each app\'s subscriber connection, a token\'s publish run', () => killAll('subscribers')],
      ['CLIENT KILL of each app\'s command connection, a token\'s publish run but unanswered', () => killAll('commands')],
      ['Redis crashes (kill -9), a token\'s publish in flight, and restarts with its append-only file', () =>
        injector.crashWithPublishInFlight(random.int(...CRASH_DOWN_MS))],
      ['the app running a generation closed, then opened again on a new port', async () => {
        // The runner of the newest generation still running (A or B, whichever it is).
        const newest = running.findLast(({ generation }) => !generation.finalized && generation.runner !== undefined)
        const index = Math.max(up.findIndex(running => running.name === newest?.generation.runner), 0)
        const [closing] = up.splice(index, 1)
        t.comment(`closing app ${closing!.name}, running ${running.filter(({ generation }) =>
          generation.runner === closing!.name && !generation.finalized).map(({ generation }) => generation.key).join(', ')}`)
        await closeApp(closing!.app)
        await sleep(random.int(...DOWN_MS))
        up.splice(index, 0, await open(closing!.name))
      }]
    ]
    for (const [name, inject] of faults) {
      phase(name)
      await inject()
      await sleep(random.int(...FLOW_MS))
    }

    phase('no more starts; every reader reads to its end')
    starts.abort()
    await starter
    const readers = running.flatMap(({ readers }) => readers)
    const lastStart = Math.max(...running.map(({ generation }) => generation.startedAt))
    const bound = MAX_DURATION + END_GRACE + SLACK_MS
    try {
      await until(() => readers.every(reader => reader.finishedAt !== undefined), lastStart + bound - Date.now(), 'every reader to stop')
    } catch {}
    for (const reader of readers) reader.stop()
    const seconds = ((Date.now() - started) / 1000).toFixed(1)

    const verdict = checkGenerations(running.map(({ generation, readers }) => ({
      key: generation.key,
      startedAt: generation.startedAt,
      yielded: generation.yielded,
      confirmed: generation.confirmed,
      readers
    })), phases, { boundMs: bound, reasons: REASONS })
    t.comment(`${seconds} s: ${resumableSummary(verdict)}`)
    t.comment(`starts refused: ${describeCounts(refused)}`)
    t.comment(`readers: ${readers.reduce((sum, reader) => sum + reader.requests, 0)} requests, ` +
      `${readers.reduce((sum, reader) => sum + reader.comebacks, 0)} comebacks; ends by reason: ${describeCounts(verdict.readerReasons)}`)
    for (const [name, reasons] of verdict.reasonsByPhase) t.comment(`generations ended during "${name}": ${describeCounts(reasons)}`)
    for (const { generation } of running) {
      t.comment(`${generation.key} on ${generation.runner}: yielded ${generation.yielded}, confirmed ${generation.confirmed}, ` +
        `aborted ${generation.aborted ?? '-'}`)
    }
    for (const problem of RESUMABLE_PROBLEMS) for (const example of verdict.examples[problem]) t.comment(`  ${problem}: ${example}`)

    t.ok(verdict.generations > 0 && verdict.delivered > 0, 'generations ran and their tokens were delivered')
    t.equal(verdict.counts.duplicates, 0, 'no reader received a token twice')
    t.equal(verdict.counts.outOfOrder, 0, 'every reader received tokens in order')
    t.equal(verdict.counts.unknownTokens, 0, 'no token that was never yielded')
    t.equal(verdict.counts.copies, 0, 'each token under one id for every reader (stored once)')
    t.equal(verdict.counts.unexplainedLosses, 0, 'every token published reached every reader that got the end')
    t.equal(verdict.counts.unexpectedGaps, 0, 'no gap notice: no history was lost')
    t.equal(verdict.counts.unexpectedEvents, 0, 'nothing but tokens, then the end')
    t.equal(verdict.counts.noEnd, 0, 'every reader received an end')
    t.equal(verdict.counts.badReasons, 0, `every end's reason is one of ${REASONS.join(', ')}`)
    t.equal(verdict.counts.mixedReasons, 0, 'the readers of a generation got the same end')
    t.equal(verdict.counts.late, 0, `every reader stopped within ${bound} ms of its generation's start`)
    t.equal(verdict.counts.not204, 0, 'a resume with the end\'s id is answered 204')
    await until(() => running.every(({ generation }) => generation.finalized), 5000, 'every generation finalized')
      .catch(() => {})
    t.same(running.filter(({ generation }) => !generation.finalized).map(({ generation }) => generation.key), [],
      'every generation was finalized')

    await Promise.all(up.map(running => closeApp(running.app)))
  })
}

function describeCounts (counts: ReadonlyMap<string, number>): string {
  return counts.size === 0 ? 'none' : [...counts].map(([key, count]) => `${key} x${count}`).join('; ')
}
