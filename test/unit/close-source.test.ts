import t from 'tap'
import type { FastifyBaseLogger } from 'fastify'
import { closeSource } from '../../lib/close-source.js'

/** A logger that keeps what it was asked to warn about. */
function logger (): FastifyBaseLogger & { warned: unknown[] } {
  const warned: unknown[] = []
  return { warned, warn (...args: unknown[]) { warned.push(args) } } as unknown as FastifyBaseLogger & { warned: unknown[] }
}
const log = logger()

t.test('discardSource finalizes a generator that already ran, so its finally runs', async t => {
  let finalized = 0
  async function * generate () { try { yield 1; yield 2 } finally { finalized++ } }
  const started = generate()
  await started.next()
  await closeSource(started, log)
  t.equal(finalized, 1)
  t.strictSame(await started.next(), { value: undefined, done: true }, 'it is done')

  function * syncGenerate () { try { yield 1 } finally { finalized++ } }
  const syncStarted = syncGenerate()
  syncStarted.next()
  await closeSource(syncStarted, log)
  t.equal(finalized, 2, 'a sync generator too')
})

t.test('discardSource closes a generator that never started, without running it', async t => {
  let ran = false
  async function * generate () { ran = true; yield 1 }
  const unstarted = generate()
  await closeSource(unstarted, log)
  t.strictSame(await unstarted.next(), { value: undefined, done: true })
  t.notOk(ran, 'its body never ran')
})

t.test('discardSource leaves alone what holds nothing: iterables, functions, primitives', async t => {
  let touched = false
  const iterable = { [Symbol.iterator]: () => { touched = true; return [][Symbol.iterator]() } }
  const halfIterator = { next: () => { touched = true; return { done: true, value: undefined } } }
  for (const value of [iterable, halfIterator, [1], () => { touched = true }, 'text', null, undefined, 42]) {
    await t.resolves(closeSource(value, log), String(value))
  }
  t.notOk(touched, 'nothing was called')
})

t.test('closeSource logs a finally that throws, and resolves all the same', async t => {
  const warnings = logger()
  async function * generate () {
    try { yield 1 } finally {
      // eslint-disable-next-line no-unsafe-finally -- a finally that throws is the case under test
      throw new Error('cleanup failed')
    }
  }
  const started = generate()
  await started.next()
  await t.resolves(closeSource(started, warnings))
  t.match(warnings.warned, [[{ err: { message: 'cleanup failed' } }, 'sse source threw while being closed']])
  t.same(log.warned, [], 'nothing else was logged')
})
