// A chat completion from an OpenAI-compatible API, as a stream of events for the plugin: one `token`
// event per content chunk, then a `usage` event. The request is a plain `fetch` given the
// generation's signal, so cancelling the generation (or the app closing) hangs up on the upstream at
// once instead of paying for tokens nobody will read; its event stream is parsed with
// eventsource-parser, the parser the OpenAI and Anthropic SDKs' own readers are built like.
import type { FastifyBaseLogger } from 'fastify'
import { EventSourceParserStream } from 'eventsource-parser/stream'

export interface CompletionRequest {
  /** Base URL of the API: `<url>/v1/chat/completions` is called. */
  upstreamUrl: string
  model: string
  prompt: string
  /** Aborts the upstream request: the generation's signal (cancel, timeout, app closing). */
  signal: AbortSignal
  log: FastifyBaseLogger
  /** Names the generation in the log line its end writes. */
  generation: string
}

export interface Usage { prompt_tokens: number, completion_tokens: number, total_tokens: number }

export type CompletionEvent =
  | { event: 'token', data: { text: string } }
  | { event: 'usage', data: Usage }

interface Chunk {
  choices?: Array<{ delta?: { content?: string | null } }>
  usage?: Usage | null
}

export async function * completion (request: CompletionRequest): AsyncGenerator<CompletionEvent> {
  const { upstreamUrl, model, prompt, signal, log, generation } = request
  const url = new URL('v1/chat/completions', upstreamUrl.endsWith('/') ? upstreamUrl : upstreamUrl + '/')
  let tokens = 0
  let outcome = 'failed'
  try {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({
        model,
        stream: true,
        stream_options: { include_usage: true },
        messages: [{ role: 'user', content: prompt }]
      }),
      signal
    })
    if (!response.ok || response.body === null) throw new Error(`the completion API answered ${response.status}`)
    const events = response.body.pipeThrough(new TextDecoderStream()).pipeThrough(new EventSourceParserStream())
    for await (const { data } of events) {
      if (data === '[DONE]') {
        outcome = 'done'
        return
      }
      const chunk = JSON.parse(data) as Chunk
      const text = chunk.choices?.[0]?.delta?.content
      // The first chunk carries the role and no text: nothing to show.
      if (typeof text === 'string' && text !== '') {
        tokens++
        yield { event: 'token', data: { text } }
      }
      if (chunk.usage != null) yield { event: 'usage', data: chunk.usage }
    }
    throw new Error('the completion API ended its stream without [DONE]')
  } finally {
    // Runs however it ends: done, failed, or stopped (cancel, timeout, app closing), which aborted the fetch.
    if (signal.aborted) outcome = String(signal.reason)
    log.info({ generation, tokens, outcome }, 'generation stopped')
  }
}
