import t from 'tap'
import { acceptsEventStream } from '../../lib/accept.js'

// RFC 9110 §12.5.1: does an Accept header allow text/event-stream?

t.test('accepts when the Accept header is absent or empty', async t => {
  t.ok(acceptsEventStream(undefined))
  t.ok(acceptsEventStream(''))
  t.ok(acceptsEventStream('  '))
})

t.test('accepts text/event-stream, text/* and */*', async t => {
  t.ok(acceptsEventStream('text/event-stream'))
  t.ok(acceptsEventStream('text/*'))
  t.ok(acceptsEventStream('*/*'))
  t.ok(acceptsEventStream('application/json, text/event-stream'), 'among other types')
  t.ok(acceptsEventStream('text/html,application/xhtml+xml,*/*;q=0.8'), 'a browser default')
})

t.test('refuses when no range covers text/event-stream', async t => {
  for (const accept of ['application/json', 'text/html', 'application/*', 'text/event-streams', 'event-stream', 'text']) {
    t.notOk(acceptsEventStream(accept), `refuses ${accept}`)
  }
})

t.test('refuses a matching range with q=0 and accepts any positive weight', async t => {
  for (const accept of ['text/event-stream;q=0', 'text/*;q=0', '*/*;q=0', 'text/event-stream;q=0.000', 'text/event-stream; q=0']) {
    t.notOk(acceptsEventStream(accept), `refuses ${accept}`)
  }
  for (const accept of ['text/event-stream;q=0.001', 'text/event-stream;q=1', 'text/event-stream;q=1.000', '*/*;q=0.5']) {
    t.ok(acceptsEventStream(accept), `accepts ${accept}`)
  }
})

t.test('the most specific matching range decides, in any order', async t => {
  const cases: Array<[string, boolean]> = [
    ['text/*;q=0.5, text/event-stream;q=0', false],
    ['text/event-stream, */*;q=0', true],
    ['text/event-stream;q=0, */*', false],
    ['*/*, text/*;q=0', false],
    ['text/*, */*;q=0', true],
    ['application/json, text/*;q=0, */*', false]
  ]
  for (const [accept, accepted] of cases) {
    t.equal(acceptsEventStream(accept), accepted, `${accept} ${accepted ? 'accepts' : 'refuses'}`)
    const reversed = accept.split(', ').reverse().join(', ')
    t.equal(acceptsEventStream(reversed), accepted, `${reversed} ${accepted ? 'accepts' : 'refuses'}`)
  }
})

t.test('a range given twice takes its more generous weight', async t => {
  t.ok(acceptsEventStream('text/event-stream;q=0, text/event-stream;q=0.2'))
  t.ok(acceptsEventStream('text/event-stream;q=0.2, text/event-stream;q=0'))
})

t.test('matches types and parameter names case-insensitively', async t => {
  t.ok(acceptsEventStream('TEXT/Event-Stream'))
  t.notOk(acceptsEventStream('Text/*;Q=0'))
  t.notOk(acceptsEventStream('*/*;Q=0'))
})

t.test('ignores other parameters and optional whitespace', async t => {
  t.ok(acceptsEventStream('text/event-stream;charset=utf-8'))
  t.notOk(acceptsEventStream('text/event-stream; charset=utf-8; q=0'))
  t.notOk(acceptsEventStream(' text/event-stream ; q=0 , application/json '))
  t.ok(acceptsEventStream('text/event-stream;level;q=0.5'), 'a parameter without a value is skipped')
})

t.test('ignores empty list elements', async t => {
  t.ok(acceptsEventStream(', ,text/event-stream,'))
})

t.test('ignores a malformed weight, as if the range had none', async t => {
  for (const q of ['abc', '2', '-1', '1.5', '', '0x0', '-0', '0e0', '0.0001', '"0"']) {
    t.ok(acceptsEventStream(`text/event-stream;q=${q}`), `q=${q} is ignored`)
  }
  t.ok(acceptsEventStream('text/event-stream;q'), 'a q without a value is ignored')
})
