// 8. auth, the stream tickets: for a client that cannot send a cookie or a header with its stream
// request (a browser's EventSource on another site than the API, holding a bearer token in memory).
// It asks for a ticket with its real credential (POST, in a header), then opens the stream with the
// ticket in the query string. That URL lands in access logs, proxies and browser history, which is
// why a ticket is worth nothing there: it opens one stream, of one route, for one user, once, within
// seconds, and the request that logged it has already spent it.
import { randomBytes } from 'node:crypto'

export interface Ticket {
  readonly user: string
  /** The route pattern it opens (`request.routeOptions.url`), and no other. */
  readonly route: string
  /** Epoch ms after which it opens nothing. */
  readonly expiresAt: number
  /** When the session it was issued under expires: the stream it opens ends then (`endAt`). */
  readonly sessionExpiresAt: number
}

export interface StreamTicketsOptions {
  /** How long a ticket stays valid, in ms (never past its session). @default 30000 */
  ttlMs?: number
  /** Tickets one user may hold unspent; a new one past that evicts that user's oldest. @default 5 */
  maxPerUser?: number
}

/** 256 random bits: the ticket cannot be guessed within its life. */
const TICKET_BYTES = 32

/**
 * Unspent tickets, in this process's memory: bounded by `maxPerUser` per user, and swept of
 * expired ones every `ttlMs`. Behind a load balancer, keep them where every instance can spend
 * them: Redis `SET ticket value PX ttl` to issue and `GETDEL ticket` to spend (just as atomic).
 */
export class StreamTickets {
  readonly ttlMs: number
  readonly maxPerUser: number
  readonly #tickets = new Map<string, Ticket>()
  /** Each user's unspent tickets, oldest first (a Set keeps insertion order). */
  readonly #byUser = new Map<string, Set<string>>()
  readonly #sweeper: NodeJS.Timeout

  constructor ({ ttlMs = 30_000, maxPerUser = 5 }: StreamTicketsOptions = {}) {
    if (!Number.isSafeInteger(ttlMs) || ttlMs < 1) throw new RangeError('ttlMs must be a positive integer of milliseconds')
    if (!Number.isSafeInteger(maxPerUser) || maxPerUser < 1) throw new RangeError('maxPerUser must be a positive integer')
    this.ttlMs = ttlMs
    this.maxPerUser = maxPerUser
    this.#sweeper = setInterval(() => this.sweep(), ttlMs).unref()
  }

  /** Unspent tickets held, expired ones not swept yet included. */
  get size (): number {
    return this.#tickets.size
  }

  /** A new ticket for `user` to open `route` once. */
  issue (user: string, route: string, sessionExpiresAt: number, now = Date.now()): { ticket: string, expiresAt: number } {
    const ticket = randomBytes(TICKET_BYTES).toString('base64url')
    const expiresAt = Math.min(now + this.ttlMs, sessionExpiresAt)
    let held = this.#byUser.get(user)
    if (held === undefined) this.#byUser.set(user, held = new Set())
    while (held.size >= this.maxPerUser) this.#delete(held.values().next().value!)
    this.#tickets.set(ticket, { user, route, expiresAt, sessionExpiresAt })
    held.add(ticket)
    return { ticket, expiresAt }
  }

  /**
   * The ticket's grant when it is valid for `route` at `now`. Whatever the answer, the ticket is gone:
   * read and deleted with no await between, so of two requests racing with it, one gets it. A ticket
   * shown on the wrong route is burnt too: whoever shows it there did not get it from the issuer.
   */
  spend (ticket: string | undefined, route: string, now = Date.now()): Ticket | undefined {
    if (ticket === undefined) return undefined
    const grant = this.#tickets.get(ticket)
    if (grant === undefined) return undefined
    this.#delete(ticket)
    return grant.route === route && now < grant.expiresAt ? grant : undefined
  }

  /** Drop every ticket expired at `now`. */
  sweep (now = Date.now()): void {
    for (const [ticket, grant] of this.#tickets) if (grant.expiresAt <= now) this.#delete(ticket)
  }

  /** Stop sweeping (the app is closing); tickets held are forgotten. */
  close (): void {
    clearInterval(this.#sweeper)
    this.#tickets.clear()
    this.#byUser.clear()
  }

  #delete (ticket: string): void {
    const grant = this.#tickets.get(ticket)
    if (grant === undefined) return
    this.#tickets.delete(ticket)
    const held = this.#byUser.get(grant.user)!
    held.delete(ticket)
    if (held.size === 0) this.#byUser.delete(grant.user)
  }
}
