import type { FastifyRequest } from 'fastify'
import { clientKeyOf } from '../admission.js'
import { FST_SSE_LIMIT_REACHED } from '../errors.js'

// Generations run whoever reads them (each may be a paid upstream call): streams' limits cannot see
// them, so they have limits of their own, counted until each source is finalized.

/** The plugin's limits on generations (see SsePluginOptions). */
export interface GenerationLimits {
  readonly maxGenerations: number
  readonly maxGenerationsPerClient: number
  readonly clientKey: (request: FastifyRequest) => string
}

/** Generations whose source is not finalized yet, in all and by client (only with a per-client limit). */
export class GenerationSlots {
  readonly #limits: GenerationLimits
  #active = 0
  readonly #byClient = new Map<string, number>()

  constructor (limits: GenerationLimits) {
    this.#limits = limits
  }

  /** A slot for a generation of `client`, released once its source is finalized; refused past a limit. */
  hold (request: FastifyRequest): () => void {
    const { maxGenerations, maxGenerationsPerClient, clientKey } = this.#limits
    const client = maxGenerationsPerClient === Infinity ? undefined : clientKeyOf(clientKey, request)
    const mine = client === undefined ? 0 : this.#byClient.get(client) ?? 0
    if (this.#active >= maxGenerations) throw new FST_SSE_LIMIT_REACHED('too many generations running on this server', 5)
    if (mine >= maxGenerationsPerClient) throw new FST_SSE_LIMIT_REACHED('too many generations of this client running', 5)
    this.#active++
    if (client !== undefined) this.#byClient.set(client, mine + 1)
    return () => {
      this.#active--
      if (client === undefined) return
      const left = this.#byClient.get(client)! - 1
      if (left === 0) this.#byClient.delete(client)
      else this.#byClient.set(client, left)
    }
  }
}
