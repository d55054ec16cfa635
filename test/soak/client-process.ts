import { fork, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { EXIT_WITH_PARENT } from '../fixtures/examples.js'
import type { Command, Report } from './protocol.js'

interface Teardown { teardown (fn: () => unknown): void }

/**
 * The soak's clients (./clients.ts) in a process of their own, through tsx: asked over IPC, answering
 * with one report per command. Killed when the test ends, if it has not exited by then.
 */
export class ClientProcess {
  readonly #child: ChildProcess
  /** Reports not asked for yet, and the asker waiting for the next one. */
  readonly #inbox: Report[] = []
  #waiting: ((report: Report) => void) | undefined
  readonly #exited: Promise<unknown>

  constructor (t: Teardown) {
    this.#child = fork(new URL('clients.ts', import.meta.url).pathname, [], {
      execArgv: ['--import', 'tsx', '--import', EXIT_WITH_PARENT],
      // Its stdout would land in the TAP stream.
      stdio: ['ignore', 'ignore', 'inherit', 'ipc']
    })
    this.#exited = once(this.#child, 'exit')
    this.#child.on('message', (report: Report) => {
      const waiting = this.#waiting
      this.#waiting = undefined
      if (waiting === undefined) this.#inbox.push(report)
      else waiting(report)
    })
    t.teardown(async () => {
      if (this.#child.exitCode !== null || this.#child.signalCode !== null) return
      this.#child.kill('SIGKILL')
      await this.#exited
    })
  }

  /** Send `command` and wait for its report (of type `type`); a failure in the child rejects. */
  async ask<T extends Report> (command: Command, type: T['type']): Promise<T> {
    this.#child.send(command)
    const report = this.#inbox.shift() ?? await Promise.race([
      new Promise<Report>(resolve => { this.#waiting = resolve }),
      this.#exited.then(() => { throw new Error(`the clients' process exited (${this.#child.exitCode}) before its '${type}' report`) })
    ])
    if (report.type === 'failed') throw new Error(`the clients' process failed: ${report.error}`)
    if (report.type !== type) throw new Error(`the clients' process sent '${report.type}' where '${type}' was due`)
    return report as T
  }

  /** Let it go (it exits once the IPC channel closes, and its sockets with it). */
  async exit (): Promise<void> {
    this.#child.disconnect()
    await this.#exited
  }
}
