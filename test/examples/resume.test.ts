import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { build } from '../../examples/resume.js'
import { EXIT_WITH_PARENT } from '../fixtures/examples.js'
import { closeApp, urlOf } from '../fixtures/http.js'

const run = promisify(execFile)

t.test('a new client gets Event 1 to Event 5 with their ids, and a retry interval', async t => {
  const app = await build({ intervalMs: 0, retryMs: 250 })
  t.teardown(() => app.close())
  const response = await app.inject({ url: '/events' })
  t.equal(response.payload, 'retry: 250\n\n' +
    [1, 2, 3, 4, 5].map(id => `id: ${id}\ndata: Event ${id}\n\n`).join(''))
})

t.test('a client that sends Last-Event-ID continues after that id', async t => {
  const app = await build({ intervalMs: 0, batch: 2 })
  t.teardown(() => app.close())
  const response = await app.inject({ url: '/events', headers: { 'last-event-id': '41' } })
  t.equal(response.payload, 'retry: 1000\n\nid: 42\ndata: Event 42\n\nid: 43\ndata: Event 43\n\n')
})

t.test('a Last-Event-ID this stream never sent is refused with 400 before the stream starts', async t => {
  const app = await build()
  t.teardown(() => app.close())
  const response = await app.inject({ url: '/events', headers: { 'last-event-id': 'abc' } })
  t.equal(response.statusCode, 400)
  t.equal(response.json().code, 'FST_EXAMPLE_BAD_LAST_EVENT_ID')
})

t.test('the command-line client resumes across runs: no event missed, none repeated', async t => {
  const app = await build({ intervalMs: 5, batch: 5, retryMs: 50 })
  t.teardown(() => closeApp(app))
  const lastEventIds: unknown[] = []
  app.addHook('onRequest', async request => { lastEventIds.push(request.headers['last-event-id']) })
  const url = await urlOf(app) + '/events'
  const dir = await mkdtemp(join(tmpdir(), 'resume-client-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'last-event-id')

  const client = async (count: number): Promise<number[]> => {
    const { stdout } = await run(process.execPath,
      ['--import', 'tsx', '--import', EXIT_WITH_PARENT, 'examples/resume-client.ts', url, '--file', file, '--count', String(count)],
      { timeout: 30_000 })
    return stdout.trim().split('\n').map(line => {
      const match = /^Received event: Event (\d+)$/.exec(line)
      if (match === null) throw new Error(`unexpected output: ${line}`)
      return Number(match[1])
    })
  }

  // 7 events cross the end of the first 5-event stream: the client reconnects within the run too.
  const first = await client(7)
  t.same(first, [1, 2, 3, 4, 5, 6, 7])
  t.equal(await readFile(file, 'utf8'), '7', 'the last id received is in the file')
  const second = await client(6)
  t.same(second, [8, 9, 10, 11, 12, 13], 'the second run starts right after the last event of the first')
  t.equal(await readFile(file, 'utf8'), '13')
  t.same(lastEventIds, [undefined, '5', '7', '12'],
    'what each request sent: nothing, the reconnect within run 1, the saved id, the reconnect within run 2')
})
