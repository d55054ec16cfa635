// 10. llm: an LLM-style stream that survives its client.
//
//   curl -N -X POST -H 'content-type: application/json' -d '{"prompt":"hi"}' -D - http://localhost:3000/llm/chat
//   curl -N -H 'Last-Event-ID: <the last id you got>' http://localhost:3000/llm/chat/<x-generation-id>
//   curl -X DELETE http://localhost:3000/llm/chat/<x-generation-id>
//
// POST /chat starts a generation (a completion from an OpenAI-compatible API, ./completions.ts) and
// streams it; its id comes in the `x-generation-id` header. The generation runs detached from that
// connection (`app.sse.resumable`): a client that leaves (a phone changing network, a reload) does
// not stop it, and GET /chat/:id reads it again, from the start or from the client's Last-Event-ID,
// on any instance sharing Redis. DELETE /chat/:id stops it wherever it runs, which hangs up on the
// upstream. Every reader's stream ends with an `sse-end` event saying why it ended.
//
// Without `upstreamUrl`, the plugin runs the bundled mock API (./upstream.ts) on a loopback port of
// its own while the app is up, so the demo needs no network and no key.
import { randomUUID } from 'node:crypto'
import Fastify, { type FastifyInstance, type FastifyPluginAsync, type FastifyServerOptions } from 'fastify'
import { Type } from 'typebox'
import ssePlugin, { END_EVENT, type SsePluginOptions } from '../../lib/index.js'
import { sseEvents } from '../../lib/typebox.js'
import { completion } from './completions.js'
import { buildUpstream } from './upstream.js'

export interface LlmOptions {
  /** Base URL of an OpenAI-compatible API (`POST <url>/v1/chat/completions`). @default the bundled mock */
  upstreamUrl?: string
  /** @default 'mock-1' */
  model?: string
  /** The bundled mock's pause before each word, in ms. @default 60 */
  tokenDelayMs?: number
  /** The longest a generation runs. @default 120000 */
  maxDuration?: number
  /** How long a finished generation can still be read. @default 600000 (10 min) */
  ttl?: number
}

const ChatRequest = Type.Object({
  prompt: Type.String({ minLength: 1, maxLength: 4000 })
}, { additionalProperties: false })

/** What a reader receives: the tokens, the usage, then the end. (`sse-gap`, the plugin's own notice, is reserved: not declared.) */
export const ChatEvents = sseEvents({
  token: Type.Object({ text: Type.String() }, { description: 'The next piece of the answer' }),
  usage: Type.Object({
    prompt_tokens: Type.Integer(),
    completion_tokens: Type.Integer(),
    total_tokens: Type.Integer()
  }, { description: 'Token counts, after the last token' }),
  [END_EVENT]: Type.Object({
    reason: Type.Union(['done', 'error', 'cancelled', 'timeout', 'server-closing', 'lost'].map(reason => Type.Literal(reason)))
  }, { description: 'The generation is over: the last event' })
}, { description: 'A generation, from the start or from Last-Event-ID, to its end' })

const GenerationParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 150 }) })

export const llm: FastifyPluginAsync<LlmOptions> = async function llm (app, opts) {
  const model = opts.model ?? 'mock-1'
  const maxDuration = opts.maxDuration ?? 120_000
  const ttl = opts.ttl ?? 600_000
  let upstreamUrl = opts.upstreamUrl

  if (upstreamUrl === undefined) {
    const upstream = await buildUpstream({
      loggerInstance: app.log.child({ service: 'llm-upstream' }, { level: 'warn' }),
      tokenDelayMs: opts.tokenDelayMs ?? 60
    })
    // Up with the app, down with it; on a port of its own, so `build()` itself never listens.
    app.addHook('onReady', async () => {
      upstreamUrl = await upstream.server.listen({ port: 0, host: '127.0.0.1' })
    })
    app.addHook('onClose', () => upstream.server.close())
  }

  app.post<{ Body: { prompt: string } }>('/chat', {
    schema: { summary: 'Start a generation and stream it', body: ChatRequest, response: { 200: ChatEvents } }
  }, (request, reply) => {
    const generation = randomUUID()
    reply.header('x-generation-id', generation)
    const { prompt } = request.body
    return reply.sse(app.sse.resumable(generation, ({ signal }) => completion({
      upstreamUrl: upstreamUrl as string, model, prompt, signal, log: request.log, generation
    }), { maxDuration, ttl }))
  })

  app.get<{ Params: { id: string }, Querystring: { from?: string } }>('/chat/:id', {
    schema: {
      summary: 'Read a generation from Last-Event-ID (or ?from=, for an EventSource that has no id yet), or from its start',
      querystring: Type.Object({ from: Type.Optional(Type.String()) }),
      response: { 200: ChatEvents }
    }
  }, (request, reply) => {
    // A page that kept the last id across a reload cannot give a new EventSource a header: the query
    // stands in for it. The header wins: it is the newer one, sent by the EventSource reconnecting.
    const { from } = request.query
    if (from !== undefined && request.headers['last-event-id'] === undefined) request.headers['last-event-id'] = from
    return reply.sseResume(request.params.id)
  })

  app.delete<{ Params: { id: string } }>('/chat/:id', {
    schema: { summary: 'Stop a generation, wherever it runs', params: GenerationParams }
  }, async (request, reply) => {
    const ran = await app.sse.cancel(request.params.id)
    return reply.code(ran ? 202 : 404).send({ cancelled: ran })
  })
}

export interface BuildOptions extends LlmOptions {
  logger?: FastifyServerOptions['logger']
  /** The plugin's options: with `redis`, a generation can be read and cancelled from every app sharing that Redis. */
  sse?: SsePluginOptions
}

export async function build (opts: BuildOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({ logger: opts.logger ?? false })
  // Each generation is an upstream completion that runs whoever reads it: a few per client at once.
  await app.register(ssePlugin, { maxGenerationsPerClient: 4, ...opts.sse })
  await app.register(llm, opts)
  return app
}
