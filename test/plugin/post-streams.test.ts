import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { EventSourceParserStream } from 'eventsource-parser/stream'
import type { EventSourceMessage } from 'eventsource-parser'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../fixtures/app.js'
import { closeApp, urlOf } from '../fixtures/http.js'
import { until } from '../fixtures/wait.js'

// Streams answering POST (LLM-style clients: fetch, a JSON body, the response body read as an event
// stream), and routes that decide per request whether to stream or to answer JSON.

interface Chat { prompt: string, stream?: boolean }

/** Tokens of an answer, one by one, until the stream ends (the signal aborts). */
async function * tokens (prompt: string, signal: AbortSignal, state: { finalized: number }): AsyncGenerator<{ event: string, data: unknown }> {
  try {
    for (const word of `You said: ${prompt}`.split(' ')) {
      yield { event: 'token', data: { text: word } }
      await sleep(5, undefined, { signal })
    }
    yield { event: 'done', data: { finish: 'stop' } }
  } finally {
    state.finalized++
  }
}

function chatRoutes (app: FastifyInstance, state: { finalized: number }): void {
  // The body decides: a stream, or the whole answer as JSON.
  app.post<{ Body: Chat }>('/chat', async (request, reply) => {
    const { prompt, stream } = request.body
    if (stream !== true) return { text: `You said: ${prompt}` }
    return reply.sse(({ signal }) => tokens(prompt, signal, state))
  })
  // The same with { sse: true }: an async iterable is streamed, anything else answered as usual.
  app.post<{ Body: Chat }>('/chat-marked', { sse: { checkAccept: false } }, async (request, reply) => {
    const { prompt, stream } = request.body
    return stream === true ? tokens(prompt, reply.sseContext.signal, state) : { text: `You said: ${prompt}` }
  })
}

/** POST a chat and read the response body as an event stream, the way fetch-based clients do. */
async function post (url: string, body: Chat, init: { accept?: string, signal?: AbortSignal } = {}): Promise<{ status: number, type: string | null, events: EventSourceMessage[], json?: unknown }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(init.accept === undefined ? {} : { accept: init.accept }) },
    body: JSON.stringify(body),
    signal: init.signal
  })
  const type = response.headers.get('content-type')
  if (!type?.startsWith('text/event-stream')) return { status: response.status, type, events: [], json: await response.json() }
  const events: EventSourceMessage[] = []
  const reader = response.body!.pipeThrough(new TextDecoderStream()).pipeThrough(new EventSourceParserStream()).getReader()
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    events.push(value)
  }
  return { status: response.status, type, events }
}

t.test('POST with a JSON body streams as GET does, read by fetch and eventsource-parser', async t => {
  const state = { finalized: 0 }
  const { app } = await buildApp(t, { heartbeat: false })
  chatRoutes(app, state)
  const base = await urlOf(app)
  for (const path of ['/chat', '/chat-marked']) {
    const { status, type, events } = await post(base + path, { prompt: 'hello there', stream: true }, { accept: 'text/event-stream' })
    t.equal(status, 200, path)
    t.equal(type, 'text/event-stream; charset=utf-8')
    t.strictSame(events.map(event => [event.event, JSON.parse(event.data)]), [
      ['token', { text: 'You' }], ['token', { text: 'said:' }], ['token', { text: 'hello' }], ['token', { text: 'there' }],
      ['done', { finish: 'stop' }]
    ], `${path}: every token, then the end`)
  }
  t.equal(state.finalized, 2)
  await closeApp(app)
})

t.test('the body decides: without stream: true the same route answers JSON, and opens no stream', async t => {
  const state = { finalized: 0 }
  const { app } = await buildApp(t)
  chatRoutes(app, state)
  const base = await urlOf(app)
  for (const path of ['/chat', '/chat-marked']) {
    const answer = await post(base + path, { prompt: 'hi' }, { accept: 'application/json' })
    t.equal(answer.status, 200)
    t.match(answer.type, /^application\/json/)
    t.strictSame(answer.json, { text: 'You said: hi' }, path)
  }
  t.equal(app.sse.stats().open, 0)
  t.equal(state.finalized, 0, 'no generator was made')
  await closeApp(app)
})

t.test('a client that asks for JSON but a stream in its body: 406 by default, streamed with checkAccept: false', async t => {
  const state = { finalized: 0 }
  const { app } = await buildApp(t, { heartbeat: false })
  chatRoutes(app, state)
  const base = await urlOf(app)
  const refused = await post(base + '/chat', { prompt: 'x', stream: true }, { accept: 'application/json' })
  t.equal(refused.status, 406)
  t.match(refused.json, { code: 'FST_SSE_NOT_ACCEPTABLE' })
  t.equal(state.finalized, 0, 'the source function was never called')
  const streamed = await post(base + '/chat-marked', { prompt: 'x', stream: true }, { accept: 'application/json' })
  t.equal(streamed.status, 200)
  t.equal(streamed.events.at(-1)?.event, 'done')
  await closeApp(app)
})

t.test('a fetch aborted mid-stream finalizes the generator at once; its signal aborted what it awaited', async t => {
  const state = { finalized: 0 }
  const { app } = await buildApp(t, { heartbeat: false })
  let aborted = 0
  app.post<{ Body: Chat }>('/slow', (_request, reply) => reply.sse(async function * ({ signal }) {
    signal.addEventListener('abort', () => { aborted++ })
    try {
      for (let i = 0; ; i++) {
        yield { event: 'token', data: { i } }
        await sleep(20, undefined, { signal })
      }
    } finally {
      state.finalized++
    }
  }))
  const controller = new AbortController()
  const response = await fetch(await urlOf(app) + '/slow', { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' }, signal: controller.signal })
  const reader = response.body!.pipeThrough(new TextDecoderStream()).pipeThrough(new EventSourceParserStream()).getReader()
  for (let n = 0; n < 3; n++) await reader.read()
  const leftAt = performance.now()
  controller.abort()
  await until(() => state.finalized === 1, 1000, 'the generator to be finalized')
  t.ok(performance.now() - leftAt < 1000, 'within a second of the client leaving')
  t.equal(aborted, 1, 'its signal aborted (an upstream fetch given it would be cancelled)')
  t.equal(app.sse.streams, 0)
  await closeApp(app)
})
