// 8. auth, the command-line client: a stream that sends `Authorization: Bearer` on every connection,
// the first and each reconnection, with a token that is fresh each time.
//
//   npx tsx examples/auth-client.ts [base-url] [--user alice] [--password alice-password] [--count n]
//
// The base URL defaults to the demo's, http://localhost:3000/auth. The `eventsource` package takes a
// `fetch` option: every connection goes through it, so it can add any header, here the bearer token.
// When the session expires, the server ends the stream (`endAt`) and the client reconnects; this
// fetch sees the token has expired and logs in again first (a real client would use its refresh
// token), so the stream goes on where it was, by Last-Event-ID, with no event lost.
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { EventSource } from 'eventsource'

/** Logs in to the auth example and keeps the token until it expires. */
export class Login {
  readonly #baseUrl: string
  readonly #user: string
  readonly #password: string
  #token: { value: string, expiresAt: number } | undefined
  /** Logins made so far. */
  logins = 0

  constructor (baseUrl: string, user: string, password: string) {
    this.#baseUrl = baseUrl
    this.#user = user
    this.#password = password
  }

  /** A token that has not expired: the one held, or a new one. */
  async token (): Promise<string> {
    if (this.#token === undefined || this.#token.expiresAt <= Date.now()) {
      const response = await fetch(this.#baseUrl + '/login', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ user: this.#user, password: this.#password })
      })
      if (!response.ok) throw new Error(`login as ${this.#user} failed: ${response.status} ${await response.text()}`)
      const { token, expiresAt } = await response.json() as { token: string, expiresAt: number }
      this.#token = { value: token, expiresAt }
      this.logins++
    }
    return this.#token.value
  }
}

/** An EventSource whose every connection carries `Authorization: Bearer <await token()>`. */
export function bearerEventSource (url: string, token: () => Promise<string>): EventSource {
  return new EventSource(url, {
    fetch: async (input, init) => fetch(input, {
      ...init,
      headers: { ...init.headers, authorization: `Bearer ${await token()}` }
    })
  })
}

async function main (): Promise<void> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: {
      user: { type: 'string', default: 'alice' },
      password: { type: 'string', default: 'alice-password' },
      count: { type: 'string' }
    }
  })
  const baseUrl = positionals[0] ?? 'http://localhost:3000/auth'
  const count = values.count === undefined ? Infinity : Number(values.count)
  const login = new Login(baseUrl, values.user, values.password)
  const source = bearerEventSource(baseUrl + '/events', () => login.token())
  let received = 0
  const stop = (message: string): void => {
    source.close()
    console.error(message)
  }
  source.onopen = () => console.error(`Connected to ${baseUrl}/events as ${values.user}`)
  source.onmessage = event => {
    if (source.readyState === EventSource.CLOSED) return
    console.log(`Received notification: ${event.data}`)
    if (++received >= count) stop(`Stopped after ${received} notifications.`)
  }
  source.onerror = event => {
    if (source.readyState === EventSource.CLOSED) {
      console.error(`Gave up: ${event.message ?? 'the server refused the stream'}`)
      process.exitCode = 1
    } else {
      console.error(`Disconnected (${event.message ?? 'stream ended'}); reconnecting with a fresh token...`)
    }
  }
  process.once('SIGINT', () => stop('Client stopped.'))
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await main()
}
