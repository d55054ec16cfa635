import type { FastifyRequest } from 'fastify'
import t from 'tap'
import type { SseContext } from '../../lib/context.js'
import { isSource, openSourceNow, type SseIterator, type SseSource } from '../../lib/source.js'

/** openSourceNow, awaited: a synchronous throw becomes a rejection, as reply.sse() treats both alike. */
async function openSource (source: SseSource, ctx: SseContext): Promise<SseIterator> {
  return openSourceNow(source, ctx)
}

function contextOf (): SseContext {
  return { signal: new AbortController().signal, lastEventId: '41', request: {} as FastifyRequest }
}

/** Drain an opened source, as the pump does, awaiting sync and async iterators alike. */
async function valuesOf (iterator: SseIterator): Promise<unknown[]> {
  const values: unknown[] = []
  for (let step = await iterator.next(); step.done !== true; step = await iterator.next()) values.push(step.value)
  return values
}

t.test('isSource accepts iterables and functions, without calling or opening them', async t => {
  let called = false
  async function * generate () { called = true; yield 1 }
  t.ok(isSource(generate()), 'an async generator object')
  t.ok(isSource((function * () { called = true; yield 1 })()), 'a generator object')
  t.ok(isSource([1, 2]), 'an array')
  t.ok(isSource(new Set([1])), 'a Set')
  t.ok(isSource({ [Symbol.asyncIterator]: () => { called = true } }), 'any async iterable')
  t.ok(isSource(generate), 'an async generator function')
  t.ok(isSource(() => { called = true }), 'any function')
  t.notOk(called, 'nothing was called or opened')
})

t.test('isSource refuses strings and values that are not iterable', async t => {
  for (const value of ['text', '', 42, null, undefined, true, {}, { next () {} }]) {
    t.notOk(isSource(value), `${typeof value === 'string' ? JSON.stringify(value) : String(value)} is not a source`)
  }
})

t.test('openSource opens an async iterable', async t => {
  async function * generate () { yield 1; yield 2 }
  t.strictSame(await valuesOf(await openSource(generate(), contextOf())), [1, 2])
})

t.test('openSource opens a sync iterable', async t => {
  t.strictSame(await valuesOf(await openSource(['a', 'b'], contextOf())), ['a', 'b'])
  t.strictSame(await valuesOf(await openSource(new Set([1]), contextOf())), [1])
})

t.test('openSource prefers Symbol.asyncIterator when a value has both', async t => {
  const both = {
    async * [Symbol.asyncIterator] () { yield 'async' },
    * [Symbol.iterator] () { yield 'sync' }
  }
  t.strictSame(await valuesOf(await openSource(both, contextOf())), ['async'])
})

t.test('openSource calls a function with the stream context and opens what it returns', async t => {
  const ctx = contextOf()
  const seen: SseContext[] = []
  const sources: Array<[string, SseSource]> = [
    ['an async iterable', c => { seen.push(c); return (async function * () { yield 1 })() }],
    ['an iterable', c => { seen.push(c); return [1] }],
    ['a promise of an iterable', async c => { seen.push(c); return [1] }],
    ['a promise of an async iterable', async c => { seen.push(c); return (async function * () { yield 1 })() }],
    ['an async generator function', async function * (c) { seen.push(c); yield 1 }]
  ]
  for (const [returns, source] of sources) {
    t.strictSame(await valuesOf(await openSource(source, ctx)), [1], `a function returning ${returns}`)
  }
  t.equal(seen.length, sources.length)
  t.ok(seen.every(c => c === ctx), 'each got the very context given, signal, lastEventId and request included')
})

t.test('openSource refuses a string, even one a function returns, with FST_SSE_INVALID_SOURCE', async t => {
  const code = 'FST_SSE_INVALID_SOURCE'
  await t.rejects(openSource('text' as unknown as SseSource, contextOf()), { code, message: /a string \(wrap it/ })
  await t.rejects(openSource(() => 'text' as unknown as Iterable<string>, contextOf()), { code, message: /a string/ })
  await t.rejects(openSource(async () => 'text' as unknown as Iterable<string>, contextOf()), { code })
})

t.test('openSource refuses a function that returns something not iterable, naming what it got', async t => {
  const code = 'FST_SSE_INVALID_SOURCE'
  const returned: Array<[unknown, RegExp]> = [
    [null, /got null$/],
    [undefined, /got undefined$/],
    [42, /got 42$/],
    [{}, /got an object without Symbol.asyncIterator or Symbol.iterator$/],
    [{ [Symbol.iterator]: 'not a function' }, /got an object without/]
  ]
  for (const [value, message] of returned) {
    await t.rejects(openSource(() => value as Iterable<unknown>, contextOf()), { code, message }, String(value))
  }
})

t.test('openSource passes on what a source function throws or rejects with', async t => {
  const boom = new Error('boom')
  await t.rejects(openSource(() => { throw boom }, contextOf()), boom)
  await t.rejects(openSource(async () => { throw boom }, contextOf()), boom)
})
