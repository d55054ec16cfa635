// The LLM example's upstream: a local mock of an OpenAI-compatible streaming API, because nothing
// outside is reachable here (and a demo should not need a key). POST /v1/chat/completions with
// `stream: true` answers an event stream as OpenAI's does:
//
//   data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"You "},...}]}
//   ...
//   data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}
//   data: [DONE]
//
// The answer is a function of the prompt (answerTo), a word per chunk, `tokenDelayMs` apart, so tests
// know the exact text. Every request is recorded, with whether its client hung up before the answer
// ended: that is how a test proves a cancellation reached the upstream.
import { setTimeout as sleep } from 'node:timers/promises'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'

export interface UpstreamOptions {
  /** Pause before each chunk, in ms. @default 60 */
  tokenDelayMs?: number
  logger?: FastifyServerOptions['logger']
  /** A pino logger to log with (instead of `logger`). */
  loggerInstance?: FastifyServerOptions['loggerInstance']
}

/** One completion request as the mock saw it. */
export interface UpstreamRequest {
  readonly prompt: string
  /** Content chunks written so far. */
  chunks: number
  /** The client hung up before the answer ended (an aborted fetch). */
  aborted: boolean
  /** The answer was written to its end, `[DONE]` included. */
  completed: boolean
}

export interface Upstream {
  readonly server: FastifyInstance
  /** Every completion request, in arrival order. */
  readonly requests: UpstreamRequest[]
}

/** The mock's answer to `prompt`, word by word, spaces kept: joined, they are the whole answer. */
export function answerTo (prompt: string): string[] {
  const text = `You asked: "${prompt}". This answer comes from a local mock of an OpenAI-compatible API, ` +
    'streamed one word at a time, so a client can leave, come back and read the rest.'
  return text.match(/\S+\s*/g) ?? []
}

interface ChatBody {
  model?: string
  stream: true
  stream_options?: { include_usage?: boolean }
  messages: Array<{ role: string, content: string }>
}

const chatSchema = {
  body: {
    type: 'object',
    required: ['messages', 'stream'],
    properties: {
      model: { type: 'string' },
      // The mock only streams, which is all the example asks of it.
      stream: { const: true },
      stream_options: { type: 'object', properties: { include_usage: { type: 'boolean' } } },
      messages: {
        type: 'array',
        minItems: 1,
        items: {
          type: 'object',
          required: ['role', 'content'],
          properties: { role: { type: 'string' }, content: { type: 'string' } }
        }
      }
    }
  }
}

export async function buildUpstream (opts: UpstreamOptions = {}): Promise<Upstream> {
  const tokenDelayMs = opts.tokenDelayMs ?? 60
  const app = Fastify({
    ...(opts.loggerInstance === undefined ? { logger: opts.logger ?? false } : { loggerInstance: opts.loggerInstance }),
    // A socket undici keeps after an aborted fetch would otherwise hold close() for Node's headers timeout.
    forceCloseConnections: true
  })
  const requests: UpstreamRequest[] = []
  let served = 0

  app.post<{ Body: ChatBody }>('/v1/chat/completions', { schema: chatSchema }, async (request, reply) => {
    const { messages, model = 'mock-1', stream_options: streamOptions } = request.body
    const prompt = messages.findLast(message => message.role === 'user')?.content ?? ''
    const record: UpstreamRequest = { prompt, chunks: 0, aborted: false, completed: false }
    requests.push(record)
    const id = `chatcmpl-${++served}`
    const created = Math.floor(Date.now() / 1000)
    const chunk = (choices: unknown[], extra: object = {}): string =>
      'data: ' + JSON.stringify({ id, object: 'chat.completion.chunk', created, model, choices, ...extra }) + '\n\n'

    // Written by hand, as a plain HTTP server would: this is the upstream, not a user of the plugin.
    reply.hijack()
    const res = reply.raw
    const hungUp = new AbortController()
    res.once('close', () => {
      if (!res.writableFinished) {
        record.aborted = true
        hungUp.abort()
      }
    })
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
    const words = answerTo(prompt)
    try {
      res.write(chunk([{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }]))
      for (const word of words) {
        await sleep(tokenDelayMs, undefined, { signal: hungUp.signal })
        res.write(chunk([{ index: 0, delta: { content: word }, finish_reason: null }]))
        record.chunks++
      }
      res.write(chunk([{ index: 0, delta: {}, finish_reason: 'stop' }]))
      if (streamOptions?.include_usage === true) {
        const usage = { prompt_tokens: prompt.split(/\s+/).filter(word => word !== '').length, completion_tokens: words.length }
        res.write(chunk([], { usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens } }))
      }
      res.end('data: [DONE]\n\n')
      record.completed = true
    } catch {
      // The client hung up mid-answer (recorded above): nothing more to write.
    }
  })
  return { server: app, requests }
}
