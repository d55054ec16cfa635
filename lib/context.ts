import type { FastifyRequest } from 'fastify'

/** What a source function is given, and what a `{ sse: true }` handler reads as `reply.sseContext`. */
export interface SseContext {
  /** Aborts when the stream ends for any reason: client gone, server closing, source error. */
  readonly signal: AbortSignal
  /** The `Last-Event-ID` request header (see `request.lastEventId`), or undefined. */
  readonly lastEventId: string | undefined
  readonly request: FastifyRequest
}

/**
 * One stream's context. The AbortController is made only when `signal` is first read (a channel
 * route never needs one), and then held for the life of the stream: a signal that is only listened
 * to (an abort listener, `AbortSignal.any()`) is held by nothing else, and must still abort.
 */
export class StreamContext implements SseContext {
  readonly request: FastifyRequest
  #controller: AbortController | undefined
  #aborted = false

  constructor (request: FastifyRequest) {
    this.request = request
  }

  get lastEventId (): string | undefined {
    return this.request.lastEventId
  }

  get signal (): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController()
      if (this.#aborted) this.#controller.abort()
    }
    return this.#controller.signal
  }

  get aborted (): boolean {
    return this.#aborted
  }

  /** The stream is over (or will never start): abort the signal, now or whenever it is first read. */
  abort (): void {
    this.#aborted = true
    this.#controller?.abort()
  }
}
