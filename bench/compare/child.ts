// A forked benchmark process (server or client) with a typed inbox: wait for the next message of a
// type, with a deadline. Every process is killed by its owner; none outlives a run.
import { fork, type ChildProcess } from 'node:child_process'

export class Child<Command extends { type: string }, Message extends { type: string }> {
  readonly process: ChildProcess
  /** Messages of type 'error' the process sent (a server's uncaught errors, a client's failures). */
  readonly errors: string[] = []
  readonly #inbox: Message[] = []
  #wake: (() => void) | undefined
  #exited = false

  constructor (file: string, args: string[], options: { gc?: boolean } = {}) {
    this.process = fork(new URL(file, import.meta.url).pathname, args, {
      execArgv: ['--import', 'tsx', ...(options.gc === true ? ['--expose-gc'] : []),
        // BENCH_COMPARE_PROFILE_DIR: every server and client writes a .cpuprofile there, for a look at its hot paths.
        ...(process.env.BENCH_COMPARE_PROFILE_DIR === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_COMPARE_PROFILE_DIR}`])],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc']
    })
    this.process.on('message', (message: Message) => {
      if (message.type === 'error') this.errors.push((message as unknown as { message: string }).message)
      else this.#inbox.push(message)
      this.#wake?.()
    })
    this.process.once('exit', () => { this.#exited = true; this.#wake?.() })
  }

  send (command: Command): void { this.process.send(command) }

  /** The next message of `type` (earlier ones of other types are kept); rejects after `ms` or if the process exits. */
  async next<T extends Message['type']> (type: T, ms: number): Promise<Extract<Message, { type: T }>> {
    const deadline = performance.now() + ms
    for (;;) {
      const at = this.#inbox.findIndex(message => message.type === type)
      if (at !== -1) return this.#inbox.splice(at, 1)[0] as Extract<Message, { type: T }>
      if (this.#exited) throw new Error(`the process exited before sending '${type}'${this.#lastError()}`)
      const left = deadline - performance.now()
      if (left <= 0) throw new Error(`no '${type}' within ${ms} ms${this.#lastError()}`)
      await new Promise<void>(resolve => {
        const timer = setTimeout(resolve, left)
        this.#wake = () => { clearTimeout(timer); resolve() }
      })
      this.#wake = undefined
    }
  }

  #lastError (): string {
    const last = this.errors.at(-1)
    return last === undefined ? '' : ` (its last error: ${last.split('\n')[0]})`
  }

  /** Ends the process: it exits by itself once its IPC channel closes; killed if not within 2 s. */
  async kill (): Promise<void> {
    if (this.#exited) return
    const exited = new Promise<void>(resolve => this.process.once('exit', () => { resolve() }))
    if (this.process.connected) this.process.disconnect()
    const timer = setTimeout(() => { this.process.kill('SIGKILL') }, 2000)
    await exited
    clearTimeout(timer)
  }
}
