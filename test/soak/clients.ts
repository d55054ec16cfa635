// The soak test's clients, in a process of their own: their sockets, EventSources and records would
// otherwise sit in the heap the test measures, and their CPU in the server's event loop. Real
// `eventsource` clients over loopback, driven by the test over IPC (./protocol.ts). Loads nothing of
// lib/ (test/coverage-map.js needs no entry for it).
import { setTimeout as sleep } from 'node:timers/promises'
import { EventSource } from 'eventsource'
import { check } from '../faults/checker.js'
import { Client } from '../faults/clients.js'
import { seeded, type Random } from '../fixtures/random.js'
import { until } from '../fixtures/wait.js'
import { ROUTES, STORM_PATH, type Command, type Report, type Route, type SoakReport } from './protocol.js'

/** A storm client never leaves by itself (the faults suite's clients do, at random): longest timer Node takes. */
const STAY_FOREVER = 2 ** 31 - 1
/** Storm clients are started in groups this big, a pause between two, as a page of clients arriving. */
const STORM_GROUP = 100
const STORM_GROUP_PAUSE_MS = 20
/** How long the storm clients may take to receive their first event, and their last one once the producer stopped. */
const FIRST_EVENT_MS = 120_000
const CATCH_UP_MS = 60_000
const PROBLEM_EXAMPLES = 10
/** A soak client not answered within this long reports it (a loaded machine answered within 2 s). */
const OPEN_TIMEOUT_MS = 30_000

/** One soak client's life. Drawn from the seed in start order: the same seed draws the same plans. */
interface Plan {
  route: Route
  /** Events it reads before it leaves. */
  events: number
  /** One client in ten leaves this many ms after it started, before its stream opens or as it does. */
  leaveEarly: number | undefined
  /** Otherwise it leaves this many ms after its stream opened, whatever it has read. */
  stay: number
  /** ms between two events of the generator and throwing routes (the server reads it from the query). */
  every: number
  /** Events the throwing route yields before it throws. */
  throwAfter: number
  /** ms it waits before the next client starts in its place. */
  think: number
}

/** As many draws for every plan, so that each plan depends on the seed and its place only. */
function draw (random: Random): Plan {
  const early = random.next() < 0.1
  const leaveEarly = random.int(0, 5)
  return {
    route: random.pick(ROUTES),
    events: random.int(1, 80),
    leaveEarly: early ? leaveEarly : undefined,
    stay: random.int(20, 3000),
    every: random.int(1, 20),
    throwAfter: random.int(1, 20),
    think: random.int(0, 30)
  }
}

function pathOf (plan: Plan): string {
  switch (plan.route) {
    case 'generator': return `/soak/generator?every=${plan.every}`
    case 'channel': return '/soak/channel'
    case 'throws': return `/soak/throws?every=${plan.every}&throwAfter=${plan.throwAfter}`
  }
}

/** The sequence number an event carries: its data on the generator routes, `{ seq }` on the channel. */
function numberOf (route: Route, data: string): number {
  return route === 'channel' ? (JSON.parse(data) as { seq: number }).seq : Number(data)
}

type SoakTally = Omit<SoakReport, 'type' | 'cpuMs' | 'openMsMean'> & { open: number, openMsTotal: number }

function newTally (): SoakTally {
  return {
    clients: 0,
    opened: 0,
    byRoute: { generator: 0, channel: 0, throws: 0 },
    events: 0,
    peakOpen: 0,
    leftEarly: 0,
    leftAfterReading: 0,
    leftOnTime: 0,
    endedByThrow: 0,
    problems: [],
    problemCount: 0,
    openMsTotal: 0,
    openMsMax: 0,
    open: 0
  }
}

/** CPU time this process spent since `start` (user and system), in ms. */
function cpuMsSince (start: NodeJS.CpuUsage): number {
  const { user, system } = process.cpuUsage(start)
  return Math.round((user + system) / 1000)
}

function problem (tally: SoakTally, what: string): void {
  tally.problemCount++
  if (tally.problems.length < PROBLEM_EXAMPLES) tally.problems.push(what)
}

/**
 * One soak client: reads its planned number of events or leaves when its time is up, whichever comes
 * first. Every event must be the one after the last (generators count from 0; a channel client starts
 * wherever the channel is). The server may end a stream only on the throwing route, after every event
 * it yielded.
 */
function runClient (base: string, plan: Plan, tally: SoakTally): Promise<void> {
  return new Promise(resolve => {
    const started = performance.now()
    const source = new EventSource(base + pathOf(plan))
    let received = 0
    let due: number | undefined = plan.route === 'channel' ? undefined : 0
    let open = false
    let gone = false
    const leave = (): void => {
      if (gone) return
      gone = true
      clearTimeout(timer)
      source.close()
      if (open) tally.open--
      resolve()
    }
    const timeUp = (): void => {
      if (plan.leaveEarly !== undefined) tally.leftEarly++
      else if (open) tally.leftOnTime++
      else problem(tally, `${pathOf(plan)}: no answer within ${OPEN_TIMEOUT_MS} ms`)
      leave()
    }
    // Counted from the stream's opening, so that a loaded machine's slow answers do not end every
    // client before its stream starts.
    let timer = setTimeout(timeUp, plan.leaveEarly ?? OPEN_TIMEOUT_MS)
    source.addEventListener('open', () => {
      if (gone) return
      open = true
      tally.opened++
      tally.peakOpen = Math.max(tally.peakOpen, ++tally.open)
      const openMs = performance.now() - started
      tally.openMsTotal += openMs
      tally.openMsMax = Math.max(tally.openMsMax, Math.round(openMs))
      if (plan.leaveEarly !== undefined) return
      clearTimeout(timer)
      timer = setTimeout(timeUp, plan.stay)
    })
    // A source closed already may still hand over what it had parsed: this client is gone by then.
    source.addEventListener(plan.route === 'channel' ? 'tick' : 'message', event => {
      if (gone) return
      tally.events++
      const n = numberOf(plan.route, event.data)
      if (due !== undefined && n !== due) problem(tally, `${pathOf(plan)}: #${n} arrived where #${due} was due`)
      due = n + 1
      if (++received < plan.events) return
      tally.leftAfterReading++
      leave()
    })
    source.addEventListener('error', event => {
      if (gone) return
      if (plan.route === 'throws' && received === plan.throwAfter) {
        tally.endedByThrow++
      } else {
        problem(tally, `${pathOf(plan)}: ended by the server after ${received} events (${event.message ?? 'no message'})`)
      }
      leave()
    })
  })
}

async function soak (command: Extract<Command, { type: 'soak' }>): Promise<SoakReport> {
  const cpu = process.cpuUsage()
  const random = seeded(command.seed)
  const tally = newTally()
  const deadline = performance.now() + command.ms
  await Promise.all(Array.from({ length: command.concurrency }, async () => {
    while (performance.now() < deadline && tally.clients < command.maxClients) {
      tally.clients++
      const plan = draw(random)
      tally.byRoute[plan.route]++
      await runClient(command.base, plan, tally)
      await sleep(plan.think)
    }
  }))
  const { open: _open, openMsTotal, ...report } = tally
  return { type: 'soaked', ...report, openMsMean: Math.round(openMsTotal / Math.max(tally.opened, 1)), cpuMs: cpuMsSince(cpu) }
}

/** The storm's clients: the fault suite's, which record every event and let the library reconnect by itself. */
let storm: Client[] = []
let stormCpu = process.cpuUsage()

async function startStorm (command: Extract<Command, { type: 'storm' }>): Promise<Report> {
  const started = performance.now()
  stormCpu = process.cpuUsage()
  const balancer = { pick: () => command.base }
  storm = Array.from({ length: command.clients }, (_, n) =>
    new Client(`client ${n}`, balancer, seeded((command.seed + n) >>> 0), { path: STORM_PATH, stayMs: [STAY_FOREVER, STAY_FOREVER] }))
  for (const [n, client] of storm.entries()) {
    client.start()
    if (n % STORM_GROUP === STORM_GROUP - 1) await sleep(STORM_GROUP_PAUSE_MS)
  }
  await until(() => storm.every(client => client.lastSeq >= 0), FIRST_EVENT_MS, 'every storm client\'s first event')
    .catch(() => {})
  const ready = storm.filter(client => client.lastSeq >= 0).length
  return { type: 'storm-ready', ready, ms: Math.round(performance.now() - started) }
}

async function checkStorm (command: Extract<Command, { type: 'check' }>): Promise<Report> {
  const last = command.published.ids.length - 1
  const caughtUp = await until(() => storm.every(client => client.lastSeq === last), CATCH_UP_MS, 'the last event')
    .then(() => true, () => false)
  for (const client of storm) client.stop()
  const failures: Record<string, number> = {}
  for (const client of storm) for (const [why, count] of client.failures) failures[why] = (failures[why] ?? 0) + count
  return {
    type: 'storm-verdict',
    verdict: check(command.published, storm, [], []),
    caughtUp,
    requests: storm.reduce((total, client) => total + client.requests, 0),
    dropped: storm.reduce((total, client) => total + client.dropped, 0),
    failures,
    cpuMs: cpuMsSince(stormCpu)
  }
}

function run (command: Command): Promise<Report> {
  switch (command.type) {
    case 'soak': return soak(command)
    case 'storm': return startStorm(command)
    case 'check': return checkStorm(command)
  }
}

process.on('message', (command: Command) => {
  run(command).then(report => process.send!(report),
    (err: Error) => process.send!({ type: 'failed', error: err.stack ?? String(err) } satisfies Report))
})
// The test is done with this process (or gone): its sockets close with it.
process.on('disconnect', () => process.exit(0))
