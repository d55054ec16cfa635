// 8. auth: event streams behind a login, with no credential in a URL.
//
//   curl -c jar -H 'content-type: application/json' -d '{"user":"alice","password":"alice-password"}' http://localhost:3000/auth/login
//   curl -N -b jar http://localhost:3000/auth/events                  # alice's notifications, by the session cookie
//   curl -b jar -H 'content-type: application/json' -d '{"text":"hi"}' http://localhost:3000/auth/notifications
//   curl -N -H "Authorization: Bearer $TOKEN" http://localhost:3000/auth/events   # TOKEN: "token" of the login answer
//   curl -b jar -H 'content-type: application/json' -d '{"route":"/auth/ticketed/events"}' http://localhost:3000/auth/stream-tickets
//   curl -N 'http://localhost:3000/auth/ticketed/events?ticket=...'   # opens once: the same URL again is a 401
//   npx tsx examples/auth-client.ts                                    # Authorization: Bearer on every (re)connection
//
// A browser's EventSource cannot send headers, so apps put tokens in the query string, and every
// access log, proxy and browser history keeps them. Three ways not to:
// - A session cookie (./auth-session.ts): the browser sends it with the stream request by itself
//   (same site, or `withCredentials` and CORS). HttpOnly, SameSite=Strict, signed.
// - `Authorization: Bearer` from a client that controls its requests: the `eventsource` package's
//   `fetch` option adds it on every connection (./auth-client.ts); fetch-based browser libraries too.
// - A stream ticket (./auth-tickets.ts), for a browser EventSource that can send neither: POST for a
//   ticket with the real credential, then open the stream with `?ticket=`: single-use, bound to the
//   user and the route, valid for seconds. Its reconnection cannot reuse it: when the stream fails,
//   ask for a new ticket and open a new EventSource, with `&lastEventId=` to resume.
// Every guard refuses in a preHandler, with a 401 JSON error, before any stream starts: the source is
// never opened. Every stream ends when its session expires (`endAt`), with a `retry:`: the client
// comes back and is authenticated again (an expired session gets a 401, and the EventSource stops).
//
// Fastify's own request log lines carry `request.url`, query string included: build() logs the route
// pattern instead (loggerWithoutQueries), and answers an unknown URL without echoing it (notFoundWithoutQuery).
import createError from '@fastify/error'
import Fastify, {
  type FastifyInstance,
  type FastifyPluginAsync,
  type FastifyReply,
  type FastifyRequest,
  type FastifyServerOptions,
  type preHandlerAsyncHookHandler
} from 'fastify'
import ssePlugin, { type SsePluginOptions } from '../lib/index.js'
import { credentialOf, passwordMatches, sessionCookie, SessionSigner, type Session } from './auth-session.js'
import { StreamTickets } from './auth-tickets.js'

export interface AuthOptions {
  /** Signs sessions; at least 32 bytes, the same on every instance. @default random per process (a restart logs everyone out) */
  secret?: string
  /** Demo users, name -> password. @default { alice: 'alice-password', bob: 'bob-password' } */
  users?: Record<string, string>
  /** How long a login lasts, in ms: its streams end then. @default 900000 (15 minutes) */
  sessionTtlMs?: number
  /** How long a stream ticket stays valid, in ms. @default 30000 */
  ticketTtlMs?: number
  /** Unspent tickets per user; another evicts the oldest. @default 5 */
  maxTicketsPerUser?: number
  /** Mark the cookie Secure (sent over HTTPS only; browsers count http://localhost as secure). @default true */
  secureCookie?: boolean
  /** The streams' `retry:`, in ms: how soon a client comes back. @default the plugin's */
  retryMs?: number
}

export const UnauthorizedError = createError('FST_EXAMPLE_UNAUTHORIZED', 'Authentication required: %s', 401)
export const BadLoginError = createError('FST_EXAMPLE_BAD_LOGIN', 'Unknown user or wrong password', 401)
export const NotTicketedError = createError('FST_EXAMPLE_NOT_TICKETED',
  'Tickets open these routes only: %s', 400)

export const DEMO_USERS: Readonly<Record<string, string>> = Object.freeze({ alice: 'alice-password', bob: 'bob-password' })

/** Each user's private channel: only that user's streams subscribe to it. */
export const userChannel = (user: string): string => 'user:' + user
export const ANNOUNCEMENTS = 'announcements'

/** The session a guard accepted for a request (a WeakMap, not a decorator: nothing to augment Fastify's types with). */
const sessions = new WeakMap<FastifyRequest, Session>()

function sessionOf (request: FastifyRequest): Session {
  const session = sessions.get(request)
  if (session === undefined) throw new Error(`no guard ran before ${request.routeOptions.url}`)
  return session
}

function refuse (reply: FastifyReply, problem: string): never {
  reply.header('www-authenticate', 'Bearer')
  throw new UnauthorizedError(problem)
}

/** A preHandler that lets through a valid session cookie or bearer token, and refuses anything else. */
export function sessionGuard (signer: SessionSigner): preHandlerAsyncHookHandler {
  return async function sessionGuard (request, reply) {
    const session = signer.verify(credentialOf(request))
    if (session === undefined) refuse(reply, 'send a valid session cookie or Authorization: Bearer token')
    sessions.set(request, session)
  }
}

interface TicketQuery {
  ticket?: string
  lastEventId?: string
}

/** A preHandler that spends the `?ticket=` of the request: valid once, on its own route, before it expires. */
export function ticketGuard (tickets: StreamTickets): preHandlerAsyncHookHandler {
  return async function ticketGuard (request, reply) {
    const grant = tickets.spend((request.query as TicketQuery).ticket, request.routeOptions.url ?? '')
    // A ticket expires with its session at the latest: a valid one has a session still valid.
    if (grant === undefined) refuse(reply, 'the stream ticket is unknown, spent, expired or for another route: ask for a new one')
    sessions.set(request, { user: grant.user, expiresAt: grant.sessionExpiresAt })
  }
}

const TICKET_QUERY = {
  type: 'object',
  properties: {
    ticket: { type: 'string', maxLength: 64 },
    // A new EventSource cannot send Last-Event-ID: a client that got a new ticket resumes with this.
    lastEventId: { type: 'string', maxLength: 512 }
  }
}
const TEXT_BODY = {
  type: 'object',
  required: ['text'],
  properties: { text: { type: 'string', minLength: 1, maxLength: 1000 } }
}

export const auth: FastifyPluginAsync<AuthOptions> = async function auth (app, opts) {
  const signer = new SessionSigner(opts.secret)
  const users = opts.users ?? DEMO_USERS
  const sessionTtlMs = opts.sessionTtlMs ?? 900_000
  const secureCookie = opts.secureCookie ?? true
  const tickets = new StreamTickets({ ttlMs: opts.ticketTtlMs, maxPerUser: opts.maxTicketsPerUser })
  app.addHook('onClose', async () => tickets.close())
  const authenticated = sessionGuard(signer)
  const ticketed = ticketGuard(tickets)
  /** Route patterns a ticket may open, as `request.routeOptions.url` spells them (with the prefix). */
  const ticketedRoutes: string[] = []

  /** The stream of `channel` for the request's session: replay after its Last-Event-ID, end at its expiry. */
  const stream = (channel: (session: Session) => string) => (request: FastifyRequest, reply: FastifyReply) => {
    const session = sessionOf(request)
    const lastEventId = request.lastEventId ?? (request.query as TicketQuery).lastEventId
    return reply.sse(app.sse.channel(channel(session)).subscribe({ lastEventId }),
      { endAt: session.expiresAt, retry: opts.retryMs })
  }
  const ticketedStream = (path: string, channel: (session: Session) => string): void => {
    ticketedRoutes.push(app.prefix + path)
    app.get(path, { schema: { querystring: TICKET_QUERY }, preHandler: ticketed }, stream(channel))
  }

  app.post<{ Body: { user: string, password: string } }>('/login', {
    schema: {
      body: {
        type: 'object',
        required: ['user', 'password'],
        properties: { user: { type: 'string', maxLength: 64 }, password: { type: 'string', maxLength: 256 } }
      }
    }
  }, async (request, reply) => {
    const { user, password } = request.body
    if (!passwordMatches(password, Object.hasOwn(users, user) ? users[user] : undefined)) throw new BadLoginError()
    const session = { user, expiresAt: Date.now() + sessionTtlMs }
    const token = signer.sign(session)
    reply.header('set-cookie', sessionCookie(token, session, secureCookie)).header('cache-control', 'no-store')
    return { user, token, expiresAt: session.expiresAt }
  })

  // Authenticated by the session cookie or a bearer token.
  app.get('/events', { preHandler: authenticated }, stream(session => userChannel(session.user)))
  app.post<{ Body: { text: string } }>('/notifications', { schema: { body: TEXT_BODY }, preHandler: authenticated },
    async request => ({ id: await app.sse.channel(userChannel(sessionOf(request).user)).publishData({ text: request.body.text }) }))
  app.post<{ Body: { text: string } }>('/announcements', { schema: { body: TEXT_BODY }, preHandler: authenticated },
    async request => ({ id: await app.sse.channel(ANNOUNCEMENTS).publishData({ from: sessionOf(request).user, text: request.body.text }) }))

  // Authenticated by a ticket, which only the two routes above give.
  ticketedStream('/ticketed/events', session => userChannel(session.user))
  ticketedStream('/ticketed/announcements', () => ANNOUNCEMENTS)
  app.post<{ Body: { route: string } }>('/stream-tickets', {
    schema: { body: { type: 'object', required: ['route'], properties: { route: { type: 'string', maxLength: 200 } } } },
    preHandler: authenticated
  }, async (request, reply) => {
    const { route } = request.body
    if (!ticketedRoutes.includes(route)) throw new NotTicketedError(ticketedRoutes.join(', '))
    const session = sessionOf(request)
    const { ticket, expiresAt } = tickets.issue(session.user, route, session.expiresAt)
    reply.code(201).header('cache-control', 'no-store')
    return { ticket, expiresAt, url: `${route}?ticket=${ticket}` }
  })
}

/** The URL without its query string: `/events?token=x` -> `/events`. */
export function pathOf (url: string): string {
  const query = url.indexOf('?')
  return query === -1 ? url : url.slice(0, query)
}

/**
 * Fastify's request serializer, but the URL is the route's pattern (`/users/:id`), or the path when no
 * route matched: never the query string, where secrets end up whatever one does.
 */
export function requestWithoutQuery (request: FastifyRequest): Record<string, unknown> {
  return {
    method: request.method,
    url: request.routeOptions?.url ?? pathOf(request.url),
    host: request.host,
    remoteAddress: request.ip,
    remotePort: request.socket?.remotePort
  }
}

type LoggerOption = FastifyServerOptions['logger']

/** `logger` (Fastify's option) with requestWithoutQuery as its `req` serializer. */
export function loggerWithoutQueries (logger: LoggerOption): LoggerOption {
  if (logger === undefined || logger === false) return false
  const options = logger === true ? {} : logger
  return { ...options, serializers: { ...options.serializers, req: requestWithoutQuery } }
}

/** Fastify's default 404 logs and answers `Route GET:/x?token=... not found`: this one names the path only. */
export function notFoundWithoutQuery (request: FastifyRequest, reply: FastifyReply): void {
  reply.code(404).send({ statusCode: 404, error: 'Not Found', message: `Route ${request.method}:${pathOf(request.url)} not found` })
}

export interface BuildOptions extends AuthOptions {
  logger?: LoggerOption
  /** The plugin's options: with `redis`, the per-user channels span every app sharing that Redis. */
  sse?: SsePluginOptions
}

export async function build (opts: BuildOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({ logger: loggerWithoutQueries(opts.logger) })
  app.setNotFoundHandler(notFoundWithoutQuery)
  await app.register(ssePlugin, opts.sse ?? {})
  await app.register(auth, opts)
  return app
}
