import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import { createParser, type EventSourceMessage } from 'eventsource-parser'
import { END_EVENT, type SsePluginOptions } from '../../lib/index.js'
import { openStream, type TestEvent } from '../../lib/testing.js'
import { build } from '../../examples/llm/index.js'
import { answerTo, buildUpstream, type Upstream } from '../../examples/llm/upstream.js'
import { closeApp, urlOf } from '../fixtures/http.js'
import { collectLogs, logsOf, type LogLine } from '../fixtures/logs.js'
import { REDIS_URL, redisAvailable, uniquePrefix } from '../fixtures/redis.js'
import { until } from '../fixtures/wait.js'

// The LLM-style example over real loopback HTTP: the app, its mock OpenAI-compatible upstream on a
// port of its own, and clients that leave, come back, attach from another tab, and cancel.

/** The mock upstream, listening, closed when the test ends. */
async function upstream (t: Test, tokenDelayMs: number): Promise<Upstream & { url: string }> {
  const mock = await buildUpstream({ tokenDelayMs })
  const url = await urlOf(mock.server)
  t.teardown(() => mock.server.close())
  return { ...mock, url }
}

/** The example's app on that upstream, its log lines collected, closed when the test ends. */
async function llmApp (t: Test, upstreamUrl: string, sse: SsePluginOptions = {}): Promise<{ app: FastifyInstance, logs: LogLine[] }> {
  const { lines: logs, stream } = collectLogs()
  const app = await build({ upstreamUrl, sse: { heartbeat: false, ...sse }, logger: { level: 'info', stream } })
  t.teardown(() => closeApp(app))
  return { app, logs }
}

const tokens = (events: TestEvent[]): string[] => events.filter(event => event.event === 'token').map(event => JSON.parse(event.data).text)
const endOf = (events: TestEvent[]): unknown => {
  const last = events.at(-1)
  return last?.event === END_EVENT ? JSON.parse(last.data) : `no ${END_EVENT} last, but ${last?.event}`
}
const start = (app: FastifyInstance, prompt: string) => openStream(app, '/chat', { method: 'POST', body: { prompt } })

t.test('the mock upstream answers as OpenAI streams: a role chunk, a chunk per word of the answer, stop, usage, [DONE]', async t => {
  const mock = await upstream(t, 0)
  const response = await fetch(mock.url + '/v1/chat/completions', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'm', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'two words' }] })
  })
  t.equal(response.headers.get('content-type'), 'text/event-stream')
  const events: EventSourceMessage[] = []
  const parser = createParser({ onEvent: event => { events.push(event) } })
  parser.feed(await response.text())
  const chunks = events.slice(0, -1).map(event => JSON.parse(event.data))
  t.strictSame(chunks[0].choices, [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }])
  const words = answerTo('two words')
  t.strictSame(chunks.slice(1, -2).map(chunk => chunk.choices[0].delta.content), words, 'a chunk per word, in order')
  t.strictSame(chunks.at(-2).choices, [{ index: 0, delta: {}, finish_reason: 'stop' }])
  t.strictSame(chunks.at(-1).usage, { prompt_tokens: 2, completion_tokens: words.length, total_tokens: 2 + words.length })
  t.equal(events.at(-1)?.data, '[DONE]')
  t.ok(chunks.every(chunk => chunk.object === 'chat.completion.chunk' && chunk.model === 'm'))
  t.match(mock.requests, [{ prompt: 'two words', chunks: words.length, aborted: false, completed: true }])
})

t.test('POST /chat streams exactly the upstream\'s tokens, then the usage, then sse-end done; the generation id comes in a header', async t => {
  const mock = await upstream(t, 1)
  const { app } = await llmApp(t, mock.url)
  const stream = await start(app, 'hello there')
  await stream.ended
  t.equal(stream.status, 200)
  t.match(stream.headers.get('x-generation-id'), /^[0-9a-f-]{36}$/)
  t.strictSame(tokens(stream.events), answerTo('hello there'), 'every word, once, in order')
  t.equal(tokens(stream.events).join(''), 'You asked: "hello there". This answer comes from a local mock of an OpenAI-compatible API, ' +
    'streamed one word at a time, so a client can leave, come back and read the rest.')
  const usage = stream.events.at(-2)!
  t.equal(usage.event, 'usage')
  t.strictSame(JSON.parse(usage.data), { prompt_tokens: 2, completion_tokens: answerTo('hello there').length, total_tokens: 2 + answerTo('hello there').length })
  t.strictSame(endOf(stream.events), { reason: 'done' })
  t.ok(stream.events.every(event => event.id !== undefined), 'every event has an id to resume from')
})

t.test('a client that leaves mid-generation does not stop it; coming back with Last-Event-ID it gets exactly the rest, then the end, then 204', async t => {
  const mock = await upstream(t, 20)
  const { app } = await llmApp(t, mock.url)
  const words = answerTo('leave and come back')
  const first = await start(app, 'leave and come back')
  const id = first.headers.get('x-generation-id')!
  t.strictSame(tokens(await first.take(5)), words.slice(0, 5))
  await first.close()
  await until(() => mock.requests[0]?.completed === true, 10_000, 'the upstream to answer to its end without a reader')
  t.equal(mock.requests[0]?.aborted, false, 'the upstream request was never cut')

  const again = await openStream(app, '/chat/' + id, { lastEventId: first.lastEventId })
  await again.ended
  t.strictSame(tokens(again.events), words.slice(5), 'exactly the words it missed, each once')
  t.equal(again.events.at(-2)?.event, 'usage')
  t.strictSame(endOf(again.events), { reason: 'done' })

  const stop = await fetch(await urlOf(app) + '/chat/' + id, { headers: { accept: 'text/event-stream', 'last-event-id': again.lastEventId! } })
  t.equal(stop.status, 204, 'with the end\'s id, a client is told to stop')
  t.equal(mock.requests.length, 1, 'the upstream was asked once')
})

t.test('another tab attaches to the running generation and gets it from the start; ?from= stands in for Last-Event-ID', async t => {
  const mock = await upstream(t, 10)
  const { app } = await llmApp(t, mock.url)
  const words = answerTo('two tabs')
  const first = await start(app, 'two tabs')
  const id = first.headers.get('x-generation-id')!
  const taken = await first.take(8)
  const second = await openStream(app, '/chat/' + id)
  const third = await openStream(app, `/chat/${id}?from=${encodeURIComponent(taken[3]!.id!)}`)
  await Promise.all([first.ended, second.ended, third.ended])
  t.strictSame(tokens(second.events), words, 'the second tab: every word from the first')
  t.strictSame(tokens(first.events), words, 'the first tab, unaffected')
  t.strictSame(tokens(third.events), words.slice(4), 'after the id given as ?from=')
  for (const stream of [first, second, third]) t.strictSame(endOf(stream.events), { reason: 'done' })
  t.equal(mock.requests.length, 1, 'one generation, one upstream request')
  const unknown = await app.inject({ url: '/chat/no-such-generation', headers: { accept: 'text/event-stream' } })
  t.equal(unknown.statusCode, 404)
})

t.test('DELETE cancels: 202, the upstream request is aborted, the generator\'s finally runs, readers get sse-end cancelled', async t => {
  const mock = await upstream(t, 50)
  const { app, logs } = await llmApp(t, mock.url)
  const reader = await start(app, 'a long answer to cancel')
  const id = reader.headers.get('x-generation-id')!
  await reader.take(2)
  const cancelled = await app.inject({ method: 'DELETE', url: '/chat/' + id })
  t.equal(cancelled.statusCode, 202)
  t.strictSame(cancelled.json(), { cancelled: true })
  await reader.ended
  t.strictSame(endOf(reader.events), { reason: 'cancelled' })
  await until(() => mock.requests[0]?.aborted === true, 5000, 'the upstream to see its request aborted')
  t.ok(mock.requests[0]!.chunks < answerTo('a long answer to cancel').length, `it stopped after ${mock.requests[0]!.chunks} words`)
  await until(() => logsOf(logs, 'generation stopped').length === 1, 5000, 'the generator\'s finally')
  t.match(logsOf(logs, 'generation stopped')[0], { generation: id, outcome: 'cancelled' })
  t.equal((await app.inject({ method: 'DELETE', url: '/chat/' + id })).statusCode, 404, 'over: nothing to cancel')
  t.equal((await app.inject({ method: 'DELETE', url: '/chat/never-started' })).statusCode, 404)
})

t.test('a body without a prompt (or with one too long) is 400 and starts nothing; an unreachable upstream ends the generation with reason error', async t => {
  const mock = await upstream(t, 0)
  const { app } = await llmApp(t, mock.url)
  for (const payload of [{}, { prompt: '' }, { prompt: 'x'.repeat(4001) }]) {
    const refused = await app.inject({ method: 'POST', url: '/chat', payload, headers: { accept: 'text/event-stream' } })
    t.equal(refused.statusCode, 400, JSON.stringify(payload))
  }
  t.equal(mock.requests.length, 0, 'the upstream was never asked')

  const gone = Fastify()
  const goneUrl = await urlOf(gone)
  await gone.close()
  const { app: broken, logs } = await llmApp(t, goneUrl)
  const stream = await start(broken, 'anyone there?')
  await stream.ended
  t.strictSame(tokens(stream.events), [])
  t.strictSame(endOf(stream.events), { reason: 'error' })
  t.match(logsOf(logs, 'sse resumable stream failed')[0], { err: { message: 'fetch failed' } })
  t.match(logsOf(logs, 'generation stopped')[0], { tokens: 0, outcome: 'failed' })
})

t.test('closing the app ends a generation with server-closing and hangs up on the upstream', async t => {
  const mock = await upstream(t, 50)
  const { app, logs } = await llmApp(t, mock.url)
  const reader = await start(app, 'closing time')
  await reader.take(1)
  await closeApp(app)
  await reader.ended
  await until(() => mock.requests[0]?.aborted === true, 5000, 'the upstream to see its request aborted')
  t.match(logsOf(logs, 'generation stopped')[0], { outcome: 'server-closing' })
})

t.test('through Redis: started on one instance, resumed on another, cancelled from it; the upstream sees the abort', async t => {
  if (!(await redisAvailable(t))) return
  const redisPrefix = uniquePrefix(t)
  const mock = await upstream(t, 30)
  const words = answerTo('one instance, then another, then stop')
  const one = await llmApp(t, mock.url, { redis: REDIS_URL, redisPrefix })
  const two = await llmApp(t, mock.url, { redis: REDIS_URL, redisPrefix })
  const first = await start(one.app, 'one instance, then another, then stop')
  const id = first.headers.get('x-generation-id')!
  t.strictSame(tokens(await first.take(3)), words.slice(0, 3))
  await first.close()

  const again = await openStream(two.app, '/chat/' + id, { lastEventId: first.lastEventId })
  t.strictSame(tokens(await again.take(3)), words.slice(3, 6), 'the other instance goes on from where the client was')
  const cancelled = await two.app.inject({ method: 'DELETE', url: '/chat/' + id })
  t.equal(cancelled.statusCode, 202, 'the other instance cancels what the first runs')
  await again.ended
  t.strictSame(endOf(again.events), { reason: 'cancelled' })
  const seen = tokens(again.events)
  t.strictSame(seen, words.slice(3, 3 + seen.length), 'in order, none twice, none missed')
  t.ok(seen.length < words.length - 3, `cut short after ${seen.length} more words`)
  await until(() => mock.requests[0]?.aborted === true, 5000, 'the upstream to see its request aborted')
  await until(() => logsOf(one.logs, 'generation stopped').length === 1, 5000, 'the generator\'s finally, on the first instance')
  t.match(logsOf(one.logs, 'generation stopped')[0], { generation: id, outcome: 'cancelled' })
  t.equal(mock.requests.length, 1)
})

t.test('a client may have four generations running at once: a fifth start is refused (429) before the upstream is called', async t => {
  const mock = await upstream(t, 50)
  const { app } = await llmApp(t, mock.url)
  const running = await Promise.all([1, 2, 3, 4].map(n => start(app, `prompt number ${n} with several words`)))
  const fifth = await app.inject({ method: 'POST', url: '/chat', headers: { accept: 'text/event-stream' }, payload: { prompt: 'one more' } })
  t.equal(fifth.statusCode, 429)
  t.equal(fifth.json().code, 'FST_SSE_LIMIT_REACHED')
  await Promise.all(running.map(stream => stream.ended))
  t.equal(mock.requests.length, 4, 'the upstream was asked four times, never for the refused one')
  await until(async () => (await app.inject({ method: 'POST', url: '/chat', headers: { accept: 'text/event-stream' }, payload: { prompt: 'later' } })).statusCode === 200,
    5000, 'a start to be accepted once the others finished')
})
