// 8. auth, the credential: a signed session that a browser carries as a cookie and any other client
// as `Authorization: Bearer <token>` (the same string). It is stateless: the user and the expiry are
// inside, signed with HMAC-SHA256, so any instance holding the secret can check it without a store
// (and none can revoke it before it expires: keep it short-lived).
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import type { FastifyRequest } from 'fastify'

export interface Session {
  readonly user: string
  /** Epoch ms: the session is refused from then on, and its streams end (`endAt`). */
  readonly expiresAt: number
}

export const SESSION_COOKIE = 'session'

/** Longer credentials are refused unread: no HMAC over whatever size a client sends. */
const MAX_TOKEN_LENGTH = 1024
const MIN_SECRET_BYTES = 32

function macOf (key: Buffer, payload: string): Buffer {
  return createHmac('sha256', key).update(payload).digest()
}

function isSession (value: unknown): value is Session {
  const { user, expiresAt } = (value ?? {}) as Record<string, unknown>
  return typeof user === 'string' && user !== '' && Number.isSafeInteger(expiresAt)
}

/** Signs sessions into tokens and reads them back; a token that was altered, or signed with another secret, reads as nothing. */
export class SessionSigner {
  readonly #key: Buffer

  /** `secret`: at least 32 bytes, shared by every instance that must accept the same sessions. */
  constructor (secret: string | Buffer = randomBytes(MIN_SECRET_BYTES)) {
    this.#key = Buffer.from(secret)
    if (this.#key.length < MIN_SECRET_BYTES) throw new RangeError(`the session secret must have at least ${MIN_SECRET_BYTES} bytes`)
  }

  sign (session: Session): string {
    const payload = Buffer.from(JSON.stringify({ user: session.user, expiresAt: session.expiresAt })).toString('base64url')
    return `${payload}.${macOf(this.#key, payload).toString('base64url')}`
  }

  /** The session in `token` when its signature holds and it has not expired at `now`. */
  verify (token: string | undefined, now = Date.now()): Session | undefined {
    if (token === undefined || token.length > MAX_TOKEN_LENGTH) return undefined
    const dot = token.indexOf('.')
    if (dot === -1) return undefined
    const payload = token.slice(0, dot)
    const mac = Buffer.from(token.slice(dot + 1), 'base64url')
    const expected = macOf(this.#key, payload)
    // Constant time: how much of a forged signature matched must not show in how long the check takes.
    if (mac.length !== expected.length || !timingSafeEqual(mac, expected)) return undefined
    let session: unknown
    try {
      session = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'))
    } catch {
      return undefined
    }
    if (!isSession(session) || session.expiresAt <= now) return undefined
    return { user: session.user, expiresAt: session.expiresAt }
  }
}

/** `name`'s value in a Cookie header (`a=1; session=...`), or undefined. */
export function cookieOf (header: string | undefined, name: string): string | undefined {
  for (const pair of header?.split(';') ?? []) {
    const eq = pair.indexOf('=')
    if (eq !== -1 && pair.slice(0, eq).trim() === name) return pair.slice(eq + 1).trim()
  }
  return undefined
}

/**
 * The credential a request carries: the bearer token when it sends an Authorization header (a
 * client that sends one means it, so a bad one is not made good by a cookie), else the session cookie.
 */
export function credentialOf (request: FastifyRequest): string | undefined {
  const authorization = request.headers.authorization
  if (authorization !== undefined) {
    const match = /^Bearer +(\S+)$/i.exec(authorization)
    return match?.[1]
  }
  return cookieOf(request.headers.cookie, SESSION_COOKIE)
}

/** The Set-Cookie value of a session: out of reach of page scripts, never sent by another site's requests. */
export function sessionCookie (token: string, session: Session, secure: boolean, now = Date.now()): string {
  const maxAge = Math.max(0, Math.ceil((session.expiresAt - now) / 1000))
  return `${SESSION_COOKIE}=${token}; Path=/; Max-Age=${maxAge}; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`
}

const digest = (text: string): Buffer => createHash('sha256').update(text).digest()

/**
 * Whether `given` is `expected` (the demo keeps passwords in its options; a real app keeps scrypt
 * hashes and compares those the same way), in a time that depends on neither (both are hashed to one length
 * first). An unknown user is checked against a dummy, so a wrong name takes as long as a wrong password.
 */
export function passwordMatches (given: string, expected: string | undefined): boolean {
  const same = timingSafeEqual(digest(given), digest(expected ?? randomBytes(16).toString('hex')))
  return same && expected !== undefined
}
