// The report of one results file: the tables (printed by run.ts), the PASS/FAIL lines, BENCHMARKS.md
// and one SVG chart per workload, all drawn from the results alone. Runnable by itself:
//   npx tsx bench/compare/report.ts bench/compare/results/latest.json
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { BASELINE } from './catalog.js'
import type { Results } from './results.js'
import { broadcastSummary, dropSummary, streamSummary } from './summary.js'
import { barChart } from './svg.js'
import { targets, type Target, type Workload } from './targets.js'

const num = (n: number, digits = 0): string => Number.isFinite(n)
  ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
  : 'n/a'
const mib = (bytes: number): string => `${num(bytes / 2 ** 20, 1)} MiB`
const kb = (bytes: number): string => `${num(bytes / 1024, 2)} KB`
const ratio = (a: number, b: number): string => `${num(a / b, 2)}x`
const share = (ms: number, of: number): string => `${num(ms)} ms (${num(100 * of, 0)}%)`
const row = (cells: string[]): string => `| ${cells.join(' | ')} |`
const head = (cells: string[]): string => [row(cells), row(cells.map(() => '---'))].join('\n')

function errorsOf (results: Results): string[] {
  const runs = [...results.stream, ...Object.values(results.broadcast).flat(), ...results.drop]
  const label = (key: string): string => results.systems.find(s => s.key === key)?.label ?? key
  return runs.flatMap(run => [
    ...(run.error === undefined ? [] : [`${label(run.system)}, round ${run.round + 1}: ${run.error}`]),
    ...run.serverErrors.slice(0, 1).map(e => `${label(run.system)}, round ${run.round + 1}, server: ${e.split('\n')[0] ?? ''}`)
  ])
}

function targetLines (all: Target[], workload: Workload): string {
  return all.filter(t => t.workload === workload).map(t => `- **${t.pass ? 'PASS' : 'FAIL'}** ${t.text}`).join('\n')
}

export function renderTables (results: Results): { markdown: string, all: Target[] } {
  const all = targets(results)
  const { config } = results.meta
  const systems = results.systems
  const out: string[] = []

  const base = streamSummary(results, BASELINE)
  out.push(`### 1. One stream: ${num(config.streamEvents)} small JSON events to one client`, '',
    'Median of the rounds. Events/s as the client counted them, from its request to the end of the response. Client CPU: ' +
      'its CPU time, and that time as a share of the stream\'s duration (near 100%, the client would be the bottleneck).', '',
    head(['system', 'events/s', 'vs baseline', 'bytes/event', 'server peak RSS', 'server CPU', 'client CPU', 'rounds (events/s)']))
  for (const s of systems) {
    if (!results.stream.some(run => run.system === s.key)) continue
    const r = streamSummary(results, s.key)
    out.push(row([s.label, num(r.eventsPerSecond), ratio(r.eventsPerSecond, base.eventsPerSecond), num(r.bytesPerEvent, 1),
      mib(r.peakRss), `${num(r.serverCpuMs)} ms`, share(r.clientCpuMs, r.clientCpuShare),
      r.errors.length > 0 ? `${r.rounds.map(v => num(v)).join(', ')} (${r.errors.length} failed)` : r.rounds.map(v => num(v)).join(', ')]))
  }
  out.push('', targetLines(all, 'stream'), '')

  for (const size of config.broadcastSizes) {
    const b = broadcastSummary(results, size, BASELINE)
    out.push(`### 2. Broadcast: ${num(size)} clients, ${config.broadcastEvents} events ${config.intervalMs} ms apart`, '',
      'Latency in ms, from when the producer meant to publish (event k is due at start + k x interval) and from when ' +
      '`publish()` ran. Median of the rounds; duplicates and gaps summed over them. Client CPU: over the burst, and as a share ' +
      'of the first publish to the last delivery (one client process holds every connection).', '',
      head(['system', 'p50 / p99 from schedule', 'p50 / p99 from publish', 'first publish to last delivery', 'server CPU', 'vs baseline',
        'server peak RSS', 'vs baseline', 'duplicates / gaps', 'client CPU']))
    for (const s of systems) {
      if (!results.broadcast[String(size)]?.some(run => run.system === s.key)) continue
      const r = broadcastSummary(results, size, s.key)
      out.push(row([s.label, `${num(r.scheduleP50, 1)} / ${num(r.scheduleP99, 1)}`, `${num(r.publishP50, 1)} / ${num(r.publishP99, 1)}`,
        `${num(r.firstToLast)} ms`, `${num(r.serverCpuMs)} ms`, ratio(r.serverCpuMs, b.serverCpuMs), mib(r.peakRss), ratio(r.peakRss, b.peakRss),
        r.rounds === 0 ? 'n/a' : `${num(r.duplicates)} / ${num(r.gaps)}`, share(r.clientCpuMs, r.clientCpuShare)]))
    }
    out.push('')
  }
  out.push(targetLines(all, 'broadcast'), '')

  const large = Math.max(...config.broadcastSizes)
  out.push(`### 3. Idle: ${num(large)} connections subscribed to the broadcast`, '',
    'Taken in workload 2 before its burst: heap (objects, after two full collections) and RSS of the server, against the same ' +
    'process before any connection, divided by the connections. Median of the rounds.', '',
    head(['system', 'heap per connection', 'RSS per connection']))
  for (const s of systems) {
    if (!results.broadcast[String(large)]?.some(run => run.system === s.key)) continue
    const r = broadcastSummary(results, large, s.key)
    out.push(row([s.label, kb(r.idleHeapPerConnection), kb(r.idleRssPerConnection)]))
  }
  out.push('', targetLines(all, 'idle'), '')

  out.push('### 4. Clients that leave, and a client that stops reading', '',
    `${num(config.dropClients)} clients each read the first event of a feed (one value at once, then one every 2 s) and leave: ` +
    'how soon after each left was its generator finalized (its `finally` ran)? Then one client reads its first chunk and stops ' +
    `reading for ${num(config.stallMs / 1000, 1)} s while its source could yield ${num(config.stallValues)} values, then leaves.`, '',
    head(['system', 'finalized within 1 s', `within ${num(config.finalizeWaitMs / 1000, 1)} s`, 'slowest', 'stall: values pulled', 'read by the client', 'server RSS growth', 'source finalized after the client left']))
  for (const s of systems) {
    if (!results.drop.some(run => run.system === s.key)) continue
    const { result: r, errors } = dropSummary(results, s.key)
    if (r === undefined) {
      out.push(row([s.label, `failed: ${errors.join('; ')}`, '', '', '', '', '', '']))
      continue
    }
    const pct = (k: number): string => `${num(100 * k / r.clients, 1)}%`
    const after = r.stall.finalizedAfterMs
    out.push(row([s.label, pct(r.within1s), pct(r.withinWait), r.finalized === 0 ? 'none finalized' : `${num(r.slowestMs)} ms${r.finalized < r.clients ? ` (${r.clients - r.finalized} never)` : ''}`,
      `${num(r.stall.pulled)}${r.stall.exhausted ? ' (all)' : ''}`, num(r.stall.eventsRead), mib(r.stall.rssGrowth),
      // Clocks of two processes differ by a fraction of a millisecond: a source that did not run out
      // but was finalized "before" its client left was finalized at once.
      after === null ? `not within ${num(2 * config.finalizeWaitMs / 1000)} s` : r.stall.exhausted && after < 0 ? `ran out ${num(-after)} ms before` : `${num(Math.max(0, after))} ms`]))
  }
  out.push('', targetLines(all, 'drop'), '')

  const errors = errorsOf(results)
  if (errors.length > 0) out.push('### Errors during the run', '', ...errors.map(e => `- ${e}`), '')
  return { markdown: out.join('\n'), all }
}

/** One chart per workload, from the same summaries as the tables. */
export function charts (results: Results): Record<string, string> {
  const { config } = results.meta
  const systems = results.systems
  const base = streamSummary(results, BASELINE).eventsPerSecond
  const sizes = config.broadcastSizes
  const large = Math.max(...sizes)
  return {
    'w1-stream.svg': barChart({
      title: `1. One stream: ${num(config.streamEvents)} small JSON events`,
      subtitle: 'events/s to one client, median of the rounds (higher is better)',
      series: ['events/s'],
      rows: systems.map(s => ({ label: s.label, values: [streamSummary(results, s.key).eventsPerSecond] })),
      marker: Number.isFinite(base) ? { value: 1.5 * base, label: 'target: 1.5x baseline' } : undefined
    }),
    'w2-broadcast.svg': barChart({
      title: `2. Broadcast: ${config.broadcastEvents} events ${config.intervalMs} ms apart`,
      subtitle: 'p99 delivery latency from the schedule, ms (lower is better)',
      series: sizes.map(size => `${num(size)} clients`),
      rows: systems.filter(s => sizes.some(size => results.broadcast[String(size)]?.some(run => run.system === s.key)))
        .map(s => ({ label: s.label, values: sizes.map(size => broadcastSummary(results, size, s.key).scheduleP99) })),
      format: v => `${num(v, v < 100 ? 1 : 0)} ms`
    }),
    'w3-idle.svg': barChart({
      title: `3. Idle: ${num(large)} subscribed connections`,
      subtitle: 'server heap per idle connection after gc, KB (lower is better)',
      series: ['heap per connection'],
      rows: systems.filter(s => results.broadcast[String(large)]?.some(run => run.system === s.key))
        .map(s => ({ label: s.label, values: [broadcastSummary(results, large, s.key).idleHeapPerConnection / 1024] })),
      format: v => `${num(v, 2)} KB`,
      marker: { value: 5.5, label: 'target: 5.5 KB' }
    }),
    'w4-drop.svg': barChart({
      title: `4. ${num(config.dropClients)} clients that read one event and leave`,
      subtitle: 'sources finalized after their client left, % (higher is better)',
      series: ['within 1 s', `within ${num(config.finalizeWaitMs / 1000, 1)} s`],
      rows: systems.filter(s => results.drop.some(run => run.system === s.key)).map(s => {
        const r = dropSummary(results, s.key).result
        return { label: s.label, values: r === undefined ? [undefined, undefined] : [100 * r.within1s / r.clients, 100 * r.withinWait / r.clients] }
      }),
      format: v => `${num(v, 1)}%`
    })
  }
}

function document (results: Results, tables: string, chartDir: string): string {
  const { meta } = results
  const { machine, config } = meta
  return `# Benchmarks: every SSE option for Fastify, side by side

Generated by \`npm run bench:compare\` (bench/compare/) from ${meta.quick ? 'a quick smoke run (small counts)' : 'one full run'}
on ${meta.date.slice(0, 10)}; ${num(meta.durationMs / 60000, 1)} minutes. The numbers are those of \`bench/compare/results/${meta.quick ? 'quick' : 'latest'}.json\`,
and \`npx tsx bench/compare/report.ts <that file>\` rewrites this page and its charts from it.

**Machine:** ${machine.cpu}, ${machine.cores} cores, ${machine.memory}; Node ${machine.node}; ${machine.os}. The machine is shared
with other work: read ratios within one run, not absolute numbers across runs.

## Reproduce

\`\`\`sh
npm ci
flock /tmp/bench.lock npm run bench:compare              # ${config.rounds} rounds (BENCH_COMPARE_ROUNDS), about 10 minutes on 2 cores
BENCH_COMPARE_QUICK=1 npm run bench:compare              # smoke run with small counts, under 90 s (results/quick.*)
npx tsx bench/compare/report.ts bench/compare/results/latest.json   # the report again, from the results file
\`\`\`

Exit status 1 when a target below fails; the results file and this report are written either way.

## How it measures

- **Systems**, each in a server process of its own (\`bench/compare/systems/<name>.ts\`), driven the way its own README
  teaches; every one streams the very same generators (\`bench/compare/system.ts\`):
  - *hand-written node:http* (the baseline): a plain \`node:http\` server; one \`write()\` per event, wait for \`drain\` when
    \`write()\` says so (and stop waiting when the client leaves); the broadcast is a \`Set\` of responses, one write per
    client per event, the frame built once per event.
  - *fastify-sse-stream*: \`{ sse: true }\` generator routes; the broadcast is a channel and the README's one-line
    \`reply.sse(channel.subscribe(...))\` route; the live feed gets the stream context's \`signal\`.
  - *@fastify/sse*: \`{ sse: true }\` routes and \`reply.sse.send(asyncIterable)\` of \`{ data }\` messages. It has **no
    broadcast facility**: the broadcast is its README's "Connection Management" pattern (\`keepAlive()\`, a first
    \`send({ data: 'connected' })\`, which writes the head, and \`onClose()\`) with a \`Set\` of contexts and one
    \`send({ data })\` per client per event; \`onClose\` aborts the live feed.
  - *fastify-sse-v2*: \`reply.sse(asyncIterable)\` of \`{ data: string }\` messages. It has **no broadcast facility**: the
    broadcast is its README's "sending individual events" (\`reply.sse(message)\`) over a \`Set\` of replies, each removed on
    \`request.socket\` 'close' as its README's note says; a first \`{ comment }\` message writes the head, so a subscriber
    sees its stream open at once. \`request.socket\` 'close' aborts the live feed.
  - *better-sse*: its documentation's Fastify recipe, \`createSession(request.raw, reply.raw)\`; \`session.iterate()\` for a
    source (it has no way to end a session: a finished stream ends \`reply.raw\` itself, and its keep-alive timer may then
    write after that end: the "write after end" a run may list under errors); its **channels**
    (\`register\`, \`broadcast\`) for the broadcast; the session's 'disconnected' event aborts the live feed.
- **Clients** run in another process over loopback: raw \`node:http\` connections and a parser that only looks for
  \`data: \` lines (and parses only the broadcast's small JSON); the client's own CPU time is printed beside the server's.
- **Rounds** interleave the systems, the order rotating each round; every run starts fresh server and client processes,
  killed after ${num(180)} s whatever happens. Workload 4 runs once per system.
- **Server peak RSS** is Linux's \`VmHWM\` after resetting it (writing \`5\` to \`/proc/self/clear_refs\`) just before the burst,
  the stream or the stall: the true peak, not a sample.
- **Server CPU** is \`process.cpuUsage()\` from just before the burst (or stream) to the last delivery.
- **Broadcast latency** is measured per event per client: both timestamps travel in the event (\`{ s, d, t }\`: its number,
  when it was due, when \`publish()\` ran); the client's ledger counts duplicates and gaps per client.
- **Finalized** means the generator's \`finally\` ran; a client's leaving and its source's \`finally\` are paired by an id.
  A stalled client's unread bytes wait in the kernel's TCP buffers (up to the \`tcp_wmem\` + \`tcp_rmem\` maximum,
  ${mib(config.socketBufferBytes)} here), outside the server's RSS. The hand-written loop waits for \`drain\`, so what it pulls while
  its client is stalled is what those buffers take: the stall target allows fastify-sse-stream 1 MiB of frames beyond that.
- **Noise:** the machine is shared; wall-clock numbers (latency, events/s) suffer most from a busy neighbour, CPU time
  and memory least. Each workload's client CPU is printed as a share of the span measured: near 100%, the client would
  be the bottleneck.

## Results

${tables}
## Charts

![Workload 1](${chartDir}/w1-stream.svg)

![Workload 2](${chartDir}/w2-broadcast.svg)

![Workload 3](${chartDir}/w3-idle.svg)

![Workload 4](${chartDir}/w4-drop.svg)
`
}

/**
 * Writes the report and charts of `results`: BENCHMARKS.md and bench/compare/charts/ for a full run;
 * results/<mode>.md and results/<mode>-charts/ for a quick or a narrowed (partial) one.
 */
export function writeReport (results: Results, mode: 'full' | 'quick' | 'partial'): { text: string, pass: boolean } {
  const { markdown, all } = renderTables(results)
  const root = new URL('../../', import.meta.url)
  const chartUrl = mode === 'full' ? new URL('bench/compare/charts/', root) : new URL(`bench/compare/results/${mode}-charts/`, root)
  mkdirSync(chartUrl, { recursive: true })
  for (const [name, svg] of Object.entries(charts(results))) writeFileSync(new URL(name, chartUrl), svg)
  if (mode === 'full') writeFileSync(new URL('BENCHMARKS.md', root), document(results, markdown, 'bench/compare/charts'))
  else writeFileSync(new URL(`bench/compare/results/${mode}.md`, root), document(results, markdown, `${mode}-charts`))
  const failed = all.filter(t => !t.pass).length
  return { text: `${markdown}\n${failed === 0 ? 'every target PASS' : `${failed} of ${all.length} targets FAIL`}`, pass: failed === 0 }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const file = process.argv[2]
  if (file === undefined) throw new Error('usage: report.ts <results.json>')
  const results = JSON.parse(readFileSync(file, 'utf8')) as Results
  const { text, pass } = writeReport(results, results.meta.quick ? 'quick' : file.endsWith('partial.json') ? 'partial' : 'full')
  console.log(text)
  process.exitCode = pass ? 0 : 1
}
