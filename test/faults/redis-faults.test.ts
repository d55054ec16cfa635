import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import type { Channel } from '../../lib/index.js'
import { buildApp } from '../fixtures/app.js'
import { channelRoute } from '../fixtures/channels.js'
import { closeApp, urlOf } from '../fixtures/http.js'
import type { LogLine } from '../fixtures/logs.js'
import { seeded } from '../fixtures/random.js'
import { ownRedis, redisServerAvailable, testClient } from '../fixtures/redis.js'
import { until } from '../fixtures/wait.js'
import { channelRecords, check, PROBLEMS, summary, type Phase, type Wipe } from './checker.js'
import { Client } from './clients.js'
import { Injector } from './injector.js'
import { Producer } from './producer.js'

// Issue 8's fault-injection suite, the strongest proof the channels can have. A producer publishes a
// steady stream through two apps on one Redis of the test's own; a few hundred `eventsource` clients
// read it over loopback, leave and come back with their Last-Event-ID to either app at random. Faults
// follow one another with the stream flowing in between: Redis hangs (CLIENT PAUSE, longer than the
// plugin's 2 s command timeout), each app's subscriber connection and command connection killed, Redis
// crashing and restarting with its append-only file, app A closed and opened again on a new port, and
// Redis crashing and coming back without its data. Kills and the first crash are timed around a publish
// in flight (./injector.ts), where an outcome is unknown. After each fault every app must accept
// publishes again within seconds. Then the checker (./checker.ts) holds every client's record against
// what was published: no copy, no unknown id, publish order, nothing lost unless a gap notice said so,
// and a gap notice only where history was really lost.
//
// Issue 11: a third of the clients read a multiplexed route (app.sse.multiplex) over two channels,
// `ticks` and `tocks`, each with a producer of its own, and come back with the cursor they last
// received (`ticks=<id>&tocks=<id>`). The checker holds them per channel to the same rules: each
// channel's events once, in its publish order, nothing lost unless that channel's `<channel>.sse-gap`
// covered it. The second producer is held while Redis loses its data (as the first is timed), so no
// publish of either has an unknown outcome then.
//
// Seeded: the seed is printed, `SSE_FAULTS_SEED=<n>` replays the choices (timing still varies).
// `SSE_FAULTS_CLIENTS=<n>` (default 200) scales it up locally.

const CLIENTS = Number(process.env.SSE_FAULTS_CLIENTS ?? 200)
const SEED = Number(process.env.SSE_FAULTS_SEED ?? process.env.SEED ?? Math.floor(Math.random() * 2 ** 32))
const random = seeded(SEED)
const CHANNEL = 'ticks'
/** The second channel of the multiplexed route, published to by a producer of its own. */
const SECOND = 'tocks'
const MULTIPLEXED = [CHANNEL, SECOND]
/** One client in this many reads the multiplexed route. */
const MULTIPLEXED_EVERY = 3
/** More than a run publishes: history truncation never causes a gap here, only a Redis that lost its data. */
const HISTORY = 100_000
/** The reconnection delay the apps tell clients. */
const RETRY_MS = 100
/** The plugin's command timeout is 2 s: a pause longer than that leaves publishes with an unknown outcome. */
const PAUSE_MS: [number, number] = [2500, 3500]
/** How long Redis (without its data) or app A stays down. */
const DOWN_MS: [number, number] = [300, 1500]
/**
 * How long Redis stays down when it crashes with a publish in flight: past the command timeout, so
 * the publish's outcome is unknown to the producer when it is finally run.
 */
const CRASH_DOWN_MS: [number, number] = [2200, 3000]
/** The stream flows this long between two faults. */
const FLOW_MS: [number, number] = [2500, 4000]
/** How long after a fault each app may take to accept publishes again (Redis is back by then). */
const RECOVERY_MS = 5000
/** How long each phase may take to settle before the suite goes on (and the checker reports what is missing). */
const SETTLE_MS = 15_000

/** Whether `condition` holds within `ms` (polling), without throwing: the checker tells what is missing. */
async function settled (condition: () => boolean, ms: number): Promise<boolean> {
  try {
    await until(condition, ms)
    return true
  } catch {
    return false
  }
}

interface RunningApp {
  readonly name: string
  readonly app: FastifyInstance
  readonly url: string
  readonly channel: Channel
  readonly second: Channel
}

t.setTimeout(120_000)

if (await redisServerAvailable(t)) {
  t.test('under Redis and app faults, every client receives each published event once, in order, or a gap notice where history was lost', async t => {
    t.comment(`seed ${SEED} (SSE_FAULTS_SEED=${SEED} replays it), ${CLIENTS} clients`)
    const redis = await ownRedis(t, { persistent: true })
    const admin = testClient(t, redis.url)
    const prefix = `sse-faults-${SEED}:`
    const started = Date.now()
    const phases: Phase[] = []
    const wipes: Wipe[] = []
    const phase = (name: string): void => {
      phases.push({ at: Date.now(), name })
      t.comment(`${((Date.now() - started) / 1000).toFixed(1)} s (${new Date().toISOString().slice(17, 23)}): ${name}`)
    }
    const allLogs: LogLine[][] = []

    const open = async (name: string): Promise<RunningApp> => {
      const { app, logs } = await buildApp(t, { redis: redis.url, redisPrefix: prefix, history: HISTORY, retry: RETRY_MS })
      allLogs.push(logs)
      channelRoute(app, CHANNEL)
      app.get('/multiplexed', (_request, reply) => reply.sse(app.sse.multiplex(MULTIPLEXED)))
      return { name, app, url: await urlOf(app), channel: app.sse.channel(CHANNEL), second: app.sse.channel(SECOND) }
    }
    /** The apps up now, A before B: where the producer publishes and the balancer sends clients. */
    const up: RunningApp[] = [await open('A'), await open('B')]

    const producer = new Producer({ targets: () => up, intervalMs: random.int(10, 20), keyPrefix: `${prefix}${SEED}:` })
    t.teardown(() => producer.abandon())
    const secondProducer = new Producer({
      targets: () => up.map(({ name, second }) => ({ name, channel: second })),
      intervalMs: random.int(20, 40),
      keyPrefix: `${prefix}${SEED}:${SECOND}:`
    })
    t.teardown(() => secondProducer.abandon())
    const secondWipes: Wipe[] = []
    const balancer = { pick: (choice: typeof random) => up.length === 0 ? undefined : choice.pick(up).url }
    const clients = Array.from({ length: CLIENTS }, (_, n) => n % MULTIPLEXED_EVERY === MULTIPLEXED_EVERY - 1
      ? new Client(`multiplexed client ${n}`, balancer, seeded((SEED + n * 0x9e3779b9) >>> 0),
        { path: '/multiplexed', stayMs: [1500, 6000], channels: MULTIPLEXED })
      : new Client(`client ${n}`, balancer, seeded((SEED + n * 0x9e3779b9) >>> 0), { path: '/' + CHANNEL, stayMs: [1500, 6000] }))
    const multiplexed = clients.filter(client => client.name.startsWith('multiplexed'))
    const single = clients.filter(client => !client.name.startsWith('multiplexed'))
    t.teardown(() => { for (const client of clients) client.stop() })

    phase('warm-up')
    producer.start()
    secondProducer.start()
    for (const client of clients) {
      client.start()
      await sleep(2)
    }
    const warm = (client: Client): boolean => client.lastSeq >= 0 ||
      (client.lastSeqOf(CHANNEL) >= 0 && client.lastSeqOf(SECOND) >= 0)
    if (!await settled(() => clients.every(warm), SETTLE_MS)) {
      t.comment(`${clients.filter(client => !warm(client)).length} clients received nothing (of some channel) during the warm-up`)
    }
    await sleep(random.int(...FLOW_MS))

    const injector = new Injector(redis, admin, prefix, producer)
    /** Kill one kind of the plugin's connections, each app's, timed `order` around a publish. */
    const killAll = async (kind: 'subscribers' | 'commands', order: 'publish first' | 'fault first'): Promise<void> => {
      const connections = await injector.connections(up.length)
      t.equal(connections[kind].length, up.length, `one of the ${kind} per app`, { listed: connections.listed })
      await injector.aroundPublish(order, () => injector.kill(connections[kind]))
    }
    const faults: Array<[name: string, inject: () => Promise<unknown>]> = [
      ['CLIENT PAUSE ALL (Redis hangs past the command timeout)', () => injector.pause(random.int(...PAUSE_MS))],
      ['CLIENT KILL of each app\'s subscriber connection, an announcement unsent', () => killAll('subscribers', 'publish first')],
      ['CLIENT KILL of each app\'s command connection, a publish run but unanswered', () => killAll('commands', 'publish first')],
      ['CLIENT KILL of each app\'s command connection, a publish unread (the connection is reset)', () => killAll('commands', 'fault first')],
      ['Redis crashes (kill -9), a publish in flight, and restarts with its append-only file', () =>
        injector.crashWithPublishInFlight(random.int(...CRASH_DOWN_MS))],
      ['app A closed, then opened again on a new port', async () => {
        const a = up.shift()!
        await closeApp(a.app)
        await sleep(random.int(...DOWN_MS))
        up.unshift(await open('A'))
      }],
      // Not with a publish in flight: the copy Redis delivered before it crashed is lost with the data,
      // its idempotency key too, and the retry is stored again under a new id (a copy no backend can
      // prevent once Redis forgets).
      ['Redis crashes (kill -9) between two publishes, and restarts without its data', async () => {
        await secondProducer.hold()
        try {
          await injector.crashAndWipe(random.int(...DOWN_MS), () => {
            wipes.push({ at: Date.now(), firstSeq: producer.ids.length })
            secondWipes.push({ at: Date.now(), firstSeq: secondProducer.ids.length })
          })
        } finally {
          secondProducer.release()
        }
      }]
    ]
    /** Each app up publishes (on a channel of its own) within RECOVERY_MS of the fault's end, or is reported. */
    const unrecovered: string[] = []
    const recovered = async (fault: string): Promise<void> => {
      const ended = Date.now()
      await Promise.all(up.map(async ({ name, app }) => {
        const probe = app.sse.channel('probe')
        let last = ''
        while (Date.now() - ended < RECOVERY_MS) {
          try {
            await probe.publish('probe')
            return
          } catch (err) {
            last = (err as Error).message
            await sleep(50)
          }
        }
        unrecovered.push(`app ${name} still refused publishes ${RECOVERY_MS} ms after "${fault}": ${last}`)
      }))
    }
    for (const [name, inject] of faults) {
      phase(name)
      await inject()
      await recovered(name)
      await sleep(random.int(...FLOW_MS))
    }

    phase('the producer stops; clients catch up')
    await Promise.all([producer.stop(), secondProducer.stop()])
    t.error(producer.error, 'the producer published every event it began')
    t.error(secondProducer.error, `the producer of ${SECOND} published every event it began`)
    const last = producer.ids.length - 1
    const secondLast = secondProducer.ids.length - 1
    const caughtUp = await settled(() => single.every(client => client.lastSeq === last) &&
      multiplexed.every(client => client.lastSeqOf(CHANNEL) === last && client.lastSeqOf(SECOND) === secondLast), SETTLE_MS)
    for (const client of clients) client.stop()
    const seconds = ((Date.now() - started) / 1000).toFixed(1)

    const perChannel = multiplexed.map(client => channelRecords(client, MULTIPLEXED))
    const verdict = check(producer, [...single, ...perChannel.map(([ticks]) => ticks!)], wipes, phases)
    const secondVerdict = check(secondProducer, perChannel.map(([, tocks]) => tocks!), secondWipes, phases)
    t.comment(`${seconds} s: ${CHANNEL} (${single.length} clients, and ${multiplexed.length} multiplexed): ${summary(verdict)}`)
    t.comment(`${SECOND} (the ${multiplexed.length} multiplexed clients): ${summary(secondVerdict)}`)
    t.comment(`clients: ${sum(clients, 'requests')} requests, ${sum(clients, 'comebacks')} comebacks, ` +
      `${sum(clients, 'dropped')} reconnections by the library; gave up: ${describeCounts(merge(clients.map(c => c.failures)))}`)
    t.comment(`publish failures retried: ${describeCounts(producer.failures)}; on ${SECOND}: ${describeCounts(secondProducer.failures)}`)
    for (const [channel, { byPhase, counts, examples }] of [[CHANNEL, verdict], [SECOND, secondVerdict]] as const) {
      for (const problem of PROBLEMS) {
        if (counts[problem] === 0) continue
        t.comment(`${channel}: ${problem} by phase: ${describeCounts(new Map(Object.entries(byPhase[problem])))}`)
        for (const example of examples[problem]) t.comment(`  ${example}`)
      }
    }
    for (const line of [...unrecovered, ...producer.stalls, ...producer.backwards, ...secondProducer.stalls, ...secondProducer.backwards]) {
      t.comment(line)
    }
    for (const [channel, { retried, ids }] of [[CHANNEL, producer], [SECOND, secondProducer]] as const) {
      for (const [seq, history] of retried) t.comment(`${channel} #${seq} resolved to ${ids[seq]} after: ${history.join('; ')}`)
    }
    t.comment(`app warnings: ${describeCounts(warnings(allLogs))}`)

    t.ok(caughtUp, 'every client caught up with the last event (a multiplexed one, with the last of each channel)')
    for (const [channel, { published, delivered, counts }] of [[CHANNEL, verdict], [SECOND, secondVerdict]] as const) {
      t.ok(published > 0 && delivered > 0, `${channel}: events were published and delivered`)
      t.equal(counts.duplicates, 0, `${channel}: no client received an event twice`)
      t.equal(counts.unknownIds, 0, `${channel}: every id received is one a publish resolved to`)
      t.equal(counts.outOfOrder, 0, `${channel}: every client received events in publish order`)
      t.equal(counts.unexplainedLosses, 0, `${channel}: every event reached every client, unless a gap notice covered it`)
      t.equal(counts.unexpectedGaps, 0, `${channel}: gap notices only where history was lost`)
      t.equal(counts.wrongGapIds, 0, `${channel}: each gap notice names the last id its client had`)
      t.equal(counts.unexpectedEvents, 0, `${channel}: no event under another name`)
      t.equal(counts.silentClients, 0, `${channel}: every client received events`)
    }
    t.same(unrecovered, [], 'every app accepted publishes again within a few seconds of each fault')
    for (const [channel, { stalls, backwards }] of [[CHANNEL, producer], [SECOND, secondProducer]] as const) {
      t.same(stalls, [], `${channel}: no app kept failing publishes`)
      t.same(backwards, [], `${channel}: every id a publish resolved to comes after the one before`)
    }
    const { subscribers, commands, listed } = await injector.connections(up.length)
    t.same([subscribers.length, commands.length], [2, 2], 'two connections per app, none left from the closed app', { listed })

    await Promise.all(up.map(running => closeApp(running.app)))
  })
}

function sum (clients: readonly Client[], field: 'requests' | 'comebacks' | 'dropped'): number {
  return clients.reduce((total, client) => total + client[field], 0)
}

function merge (maps: ReadonlyArray<ReadonlyMap<string, number>>): Map<string, number> {
  const merged = new Map<string, number>()
  for (const map of maps) for (const [key, count] of map) merged.set(key, (merged.get(key) ?? 0) + count)
  return merged
}

function describeCounts (counts: ReadonlyMap<string, number>): string {
  return counts.size === 0 ? 'none' : [...counts].map(([key, count]) => `${key} x${count}`).join('; ')
}

/** Warn and error lines of every app, by message. */
function warnings (logs: readonly LogLine[][]): Map<string, number> {
  return merge(logs.map(lines => {
    const counts = new Map<string, number>()
    for (const line of lines) {
      if (line.level < 40) continue
      const err = line.err as { code?: string, message?: string } | undefined
      const key = err === undefined ? line.msg : `${line.msg} (${err.code ?? err.message})`
      counts.set(key, (counts.get(key) ?? 0) + 1)
    }
    return counts
  }))
}
