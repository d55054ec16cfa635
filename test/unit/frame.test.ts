import assert from 'node:assert/strict'
import t from 'tap'
import fc from 'fast-check'
import {
  HEARTBEAT_FRAME,
  commentFrame,
  dataFrame,
  frameOf,
  messageFrame,
  prepare,
  preparedBytes,
  preparedFrame,
  retryFrame,
  validateEvent,
  validateId,
  validateRetry,
  type Serializer
} from '../../lib/frame.js'
import type { SseMessage } from '../../lib/message.js'
import { bytesOf, readAsSpec, readWithParser, type SpecState } from '../fixtures/event-stream-readers.js'

// lib/frame.ts against the WHATWG HTML standard, "Server-sent events" (§9.2.5 parsing, §9.2.6
// interpreting): every expectation is what a user agent reading the bytes must end up with.

const json: Serializer = JSON.stringify
const spec = (frame: string, state?: SpecState) => readAsSpec(bytesOf(frame), state)
const parsed = (frame: string) => readWithParser([bytesOf(frame)])

t.test('writes string data as one data line followed by a blank line', async t => {
  t.equal(frameOf('hello', json), 'data: hello\n\n')
  t.equal(dataFrame('hello', json), 'data: hello\n\n')
  t.equal(messageFrame({ data: 'hello' }, json), 'data: hello\n\n')
  t.strictSame(spec('data: hello\n\n').events, [{ type: 'message', data: 'hello', lastEventId: '' }])
})

t.test('writes one data line per line of data, whether lines end in LF, CR or CRLF', async t => {
  const frame = frameOf('a\nb\rc\r\nd', json)
  t.equal(frame, 'data: a\ndata: b\ndata: c\ndata: d\n\n')
  t.strictSame(spec(frame).events.map(e => e.data), ['a\nb\nc\nd'], 'a client joins the lines with LF')
  t.strictSame(parsed(frame).events.map(e => e.data), ['a\nb\nc\nd'])
})

t.test('keeps empty lines of data, including leading and trailing line breaks', async t => {
  t.equal(frameOf('\n', json), 'data: \ndata: \n\n')
  t.equal(frameOf('\r\n\r\n', json), 'data: \ndata: \ndata: \n\n')
  t.equal(frameOf('\n\nx\r', json), 'data: \ndata: \ndata: x\ndata: \n\n')
  t.strictSame(spec(frameOf('\n', json)).events.map(e => e.data), ['\n'])
  t.strictSame(spec(frameOf('\n\nx\r', json)).events.map(e => e.data), ['\n\nx\n'])
})

t.test('writes empty-string data as a real event that a client dispatches with data ""', async t => {
  t.equal(frameOf('', json), 'data: \n\n')
  t.equal(messageFrame({ data: '' }, json), 'data: \n\n')
  t.strictSame(spec('data: \n\n').events, [{ type: 'message', data: '', lastEventId: '' }])
  t.strictSame(parsed('data: \n\n').events.map(e => e.data), [''])
})

t.test('writes one space after every colon, so a leading space in a value survives', async t => {
  const frame = messageFrame({ id: ' 1', event: ' tick', data: '  two spaces', comment: ' note' }, json)
  t.equal(frame, ':  note\nid:  1\nevent:  tick\ndata:   two spaces\n\n')
  t.strictSame(spec(frame).events, [{ type: ' tick', data: '  two spaces', lastEventId: ' 1' }])
  t.strictSame(spec(frame).comments, [' note'])
  t.strictSame(parsed(frame).events, [{ id: ' 1', event: ' tick', data: '  two spaces' }])
})

t.test('writes message fields in the order comment, retry, id, event, data', async t => {
  const frame = messageFrame({ data: 'x', event: 'e', id: 7, retry: 1500, comment: 'c' }, json)
  t.equal(frame, ': c\nretry: 1500\nid: 7\nevent: e\ndata: x\n\n')
  const read = spec(frame)
  t.strictSame(read.events, [{ type: 'e', data: 'x', lastEventId: '7' }])
  t.equal(read.reconnectionTime, 1500)
})

t.test('serializes data that is not a string with the serializer, JSON.stringify by default', async t => {
  t.equal(frameOf({ temperature: 21 }, json), 'data: {"temperature":21}\n\n')
  t.equal(frameOf(21, json), 'data: 21\n\n')
  t.equal(frameOf(null, json), 'data: null\n\n')
  t.equal(frameOf([1, 'a'], json), 'data: [1,"a"]\n\n')
  t.equal(frameOf({}, json), 'data: {}\n\n', 'an empty object is data, not an empty message')
  t.equal(messageFrame({ data: { a: 1 } }, json), 'data: {"a":1}\n\n')
  t.equal(frameOf(21, value => `<${String(value)}>`), 'data: <21>\n\n')
})

t.test('splits serialized data that contains line breaks into data lines', async t => {
  const pretty: Serializer = value => JSON.stringify(value, null, 1)
  const frame = frameOf([1, 2], pretty)
  t.equal(frame, 'data: [\ndata:  1,\ndata:  2\ndata: ]\n\n')
  t.strictSame(spec(frame).events.map(e => JSON.parse(e.data)), [[1, 2]])
})

t.test('writes string data as it is, never through the serializer', async t => {
  const refuses: Serializer = () => { throw new Error('not for strings') }
  t.equal(frameOf('{"a":1}', refuses), 'data: {"a":1}\n\n')
  t.equal(dataFrame('x', refuses), 'data: x\n\n')
  t.equal(messageFrame({ data: 'x' }, refuses), 'data: x\n\n')
})

t.test('keeps 0: retry: 0 and id: 0 are written', async t => {
  t.equal(messageFrame({ retry: 0 }, json), 'retry: 0\n\n')
  t.equal(retryFrame(0), 'retry: 0\n\n')
  t.equal(messageFrame({ id: 0, data: 0 }, json), 'id: 0\ndata: 0\n\n')
  t.equal(spec('retry: 0\n\n').reconnectionTime, 0)
  t.strictSame(parsed('retry: 0\n\n').retries, [0])
})

t.test('writes numeric ids in decimal and refuses ids that are not finite numbers or strings', async t => {
  t.equal(messageFrame({ id: 42, data: 'x' }, json), 'id: 42\ndata: x\n\n')
  t.equal(messageFrame({ id: -1.5, data: 'x' }, json), 'id: -1.5\ndata: x\n\n')
  t.equal(validateId(-0), '0')
  for (const id of [Number.NaN, Infinity, -Infinity, null, true, {}, 10n]) {
    t.throws(() => validateId(id), { code: 'FST_SSE_INVALID_ID' }, `refuses ${String(id)}`)
  }
})

t.test('writes an empty id, which resets the client\'s last event id', async t => {
  const frame = messageFrame({ id: '', data: 'x' }, json)
  t.equal(frame, 'id: \ndata: x\n\n')
  t.strictSame(spec(frame, { lastEventId: '41', reconnectionTime: undefined }).events,
    [{ type: 'message', data: 'x', lastEventId: '' }])
})

t.test('writes an empty event name, which a client dispatches as "message"', async t => {
  const frame = messageFrame({ event: '', data: 'x' }, json)
  t.equal(frame, 'event: \ndata: x\n\n')
  t.strictSame(spec(frame).events.map(e => e.type), ['message'])
})

t.test('a frame without data dispatches no event, yet its id sets the last event id', async t => {
  const idOnly = messageFrame({ id: '5' }, json)
  t.equal(idOnly, 'id: 5\n\n')
  const read = spec(idOnly + 'data: next\n\n')
  t.strictSame(read.events, [{ type: 'message', data: 'next', lastEventId: '5' }],
    'the id-only frame dispatched nothing, and the next event carries its id')
  t.equal(read.lastEventId, '5')
  t.strictSame(parsed(idOnly).events, [])

  for (const message of [{ event: 'tick' }, { comment: 'c' }, { retry: 10 }, { data: undefined }]) {
    const frame = messageFrame(message, json)
    t.strictSame(spec(frame).events, [], `${JSON.stringify(frame)} dispatches nothing`)
    t.strictSame(parsed(frame).events, [])
  }
  t.equal(spec(messageFrame({ retry: 10 }, json)).reconnectionTime, 10, 'a retry-only frame sets the reconnection time')
})

t.test('keeps a multi-line comment as comment lines that dispatch nothing', async t => {
  const frame = commentFrame('a\nb\r\nc\rd')
  t.equal(frame, ': a\n: b\n: c\n: d\n\n')
  t.equal(messageFrame({ comment: 'a\nb' }, json), ': a\n: b\n\n')
  t.equal(commentFrame(''), ': \n\n')
  t.strictSame(spec(frame), { events: [], comments: ['a', 'b', 'c', 'd'], lastEventId: '', reconnectionTime: undefined })
  t.strictSame(parsed(frame).comments, ['a', 'b', 'c', 'd'])
  t.strictSame(parsed(frame).events, [])
})

t.test('the heartbeat is an empty comment that dispatches nothing', async t => {
  t.equal(HEARTBEAT_FRAME, ':\n\n')
  t.strictSame(spec(HEARTBEAT_FRAME), { events: [], comments: [''], lastEventId: '', reconnectionTime: undefined })
})

t.test('refuses a comment that is not a string with FST_SSE_INVALID_COMMENT', async t => {
  t.throws(() => commentFrame(5 as unknown as string), { code: 'FST_SSE_INVALID_COMMENT' })
  t.throws(() => messageFrame({ comment: null as unknown as string, data: 'x' }, json), { code: 'FST_SSE_INVALID_COMMENT' })
})

t.test('never writes an id with CR, LF or NUL: FST_SSE_INVALID_ID and no frame', async t => {
  for (const id of ['a\nb', 'a\rb', 'a\r\nb', '\n', 'x\0', '\0']) {
    const message = { id, data: 'x' }
    t.throws(() => messageFrame(message, json), { code: 'FST_SSE_INVALID_ID' }, `refuses ${JSON.stringify(id)}`)
    t.throws(() => frameOf(message, json), { code: 'FST_SSE_INVALID_ID' })
    t.throws(() => prepare(message, json), { code: 'FST_SSE_INVALID_ID' })
  }
  t.throws(() => validateId('a\ndata: injected'), { message: /without CR, LF or NUL/ }, 'the message names the fix')
})

t.test('never writes an event name with CR or LF: FST_SSE_INVALID_EVENT and no frame', async t => {
  for (const event of ['a\nb', 'a\rb', 'a\r\nb', '\r']) {
    const message = { event, data: 'x' }
    t.throws(() => messageFrame(message, json), { code: 'FST_SSE_INVALID_EVENT' }, `refuses ${JSON.stringify(event)}`)
    t.throws(() => frameOf(message, json), { code: 'FST_SSE_INVALID_EVENT' })
  }
  for (const event of [5, null, {}]) {
    t.throws(() => validateEvent(event), { code: 'FST_SSE_INVALID_EVENT' }, `refuses ${String(event)}`)
  }
})

t.test('allows NUL in an event name and in data, which the standard reads as they are', async t => {
  const frame = messageFrame({ event: 'a\0b', data: 'c\0d' }, json)
  t.equal(frame, 'event: a\0b\ndata: c\0d\n\n')
  t.strictSame(spec(frame).events, [{ type: 'a\0b', data: 'c\0d', lastEventId: '' }])
})

t.test('checks the fields before serializing, so an invalid message does no work', async t => {
  let calls = 0
  const counting: Serializer = value => { calls++; return JSON.stringify(value) }
  t.throws(() => messageFrame({ comment: 'ok', id: 'a\nb', data: { big: true } }, counting), { code: 'FST_SSE_INVALID_ID' })
  t.throws(() => messageFrame({ event: 'a\rb', data: { big: true } }, counting), { code: 'FST_SSE_INVALID_EVENT' })
  t.equal(calls, 0, 'the serializer never ran')
})

t.test('refuses a retry that is not a non-negative safe integer: FST_SSE_INVALID_RETRY', async t => {
  for (const retry of [-1, 1.5, Number.NaN, Infinity, 2 ** 53, '100', null, false]) {
    t.throws(() => messageFrame({ retry: retry as number }, json), { code: 'FST_SSE_INVALID_RETRY' },
      `refuses ${String(retry)}`)
    t.throws(() => retryFrame(retry as number), { code: 'FST_SSE_INVALID_RETRY' })
  }
  t.equal(validateRetry(Number.MAX_SAFE_INTEGER), Number.MAX_SAFE_INTEGER)
  t.equal(retryFrame(-0), 'retry: 0\n\n', '-0 is written as 0')
})

t.test('reports a serializer that throws as FST_SSE_SERIALIZE, with the error as cause', async t => {
  const boom = new Error('boom')
  const err = t.throws(() => frameOf({ a: 1 }, () => { throw boom }), { code: 'FST_SSE_SERIALIZE', message: /boom/ })
  t.equal((err as Error).cause, boom)
  t.throws(() => frameOf({ n: 1n }, json), { code: 'FST_SSE_SERIALIZE', message: /BigInt/ })
  t.throws(() => messageFrame({ data: 1 }, () => { throw boom }), { code: 'FST_SSE_SERIALIZE' })
})

t.test('reports a serializer that returns anything but a string as FST_SSE_SERIALIZE', async t => {
  t.throws(() => frameOf(undefined, json), { code: 'FST_SSE_SERIALIZE', message: /returned undefined for undefined/ })
  t.throws(() => frameOf(() => 1, json), { code: 'FST_SSE_SERIALIZE', message: /returned undefined for function/ })
  t.throws(() => frameOf({ a: 1 }, (() => 5) as unknown as Serializer), { code: 'FST_SSE_SERIALIZE', message: /returned 5/ })
  t.throws(() => frameOf('x'.length, (() => null) as unknown as Serializer), { code: 'FST_SSE_SERIALIZE', message: /returned null for 1/ })
  t.throws(() => dataFrame(true, (() => ({})) as unknown as Serializer), { code: 'FST_SSE_SERIALIZE', message: /returned object for true/ })
})

t.test('treats an object as a message only when all its keys are message fields', async t => {
  t.equal(frameOf({ data: 'x', id: 1 }, json), 'id: 1\ndata: x\n\n')
  t.equal(frameOf({ data: 'x', extra: 1 }, json), 'data: {"data":"x","extra":1}\n\n')
  class Reading { data = 'x' }
  t.equal(frameOf(new Reading(), json), 'data: {"data":"x"}\n\n')
})

t.test('prepare() builds the frame once and freezes the message with it', async t => {
  let calls = 0
  const counting: Serializer = value => { calls++; return JSON.stringify(value) }
  const input: SseMessage = { id: 1, event: 'tick', data: { n: 1 } }
  const prepared = prepare(input, counting)
  t.equal(calls, 1)
  t.ok(Object.isFrozen(prepared), 'the prepared message is frozen')
  t.notOk(Object.isFrozen(input), 'the message given is left alone')
  t.not(prepared, input)
  t.strictSame({ ...prepared }, input, 'it keeps the message fields')
  t.equal(preparedFrame(prepared), 'id: 1\nevent: tick\ndata: {"n":1}\n\n')

  const other: Serializer = () => { throw new Error('a prepared frame is never rebuilt') }
  t.equal(frameOf(prepared, other), preparedFrame(prepared))
  t.equal(frameOf(prepared, other), preparedFrame(prepared))
  t.equal(calls, 1, 'writing it again serializes nothing')
  t.throws(() => { (prepared as { data: unknown }).data = 2 }, TypeError, 'it cannot be changed afterwards')
  t.equal(prepare(prepared, counting).id, 1, 'a prepared message can be prepared again')
})

t.test('prepare() encodes the frame once, into memory of its own: a kept event never holds a shared pool slab', async t => {
  const prepared = prepare({ id: '1-1', data: 'é' }, json)
  const bytes = preparedBytes(prepared)!
  t.equal(bytes.toString(), preparedFrame(prepared))
  t.equal(bytes.byteOffset, 0)
  t.equal(bytes.buffer.byteLength, bytes.length, 'not a slice of a larger buffer')
  t.equal(preparedBytes({ id: '1-1', data: 'x' }), undefined, 'a message not prepared has none')
})

t.test('prepare() refuses an invalid message at once', async t => {
  t.throws(() => prepare({ event: 'a\nb', data: 1 }, json), { code: 'FST_SSE_INVALID_EVENT' })
  t.throws(() => prepare({ data: 1 }, () => { throw new Error('no') }), { code: 'FST_SSE_SERIALIZE' })
})

// ---------------------------------------------------------------------------------------------
// Properties: for any message, the bytes read back (by the standard's algorithm and by
// eventsource-parser) give exactly the event the standard says, or the message is refused.

const BREAKERS = ['\r', '\n', '\r\n', '\0']
/** Characters that matter to the format, any code point, and the odd lone surrogate. */
function unitOf (specials: string[]) {
  return fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...specials) },
    { weight: 6, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
    { weight: 1, arbitrary: fc.constantFrom('\uD800', '\uDFFF') }
  )
}
const text = fc.string({ unit: unitOf([...BREAKERS, ' ', ':', '\uFEFF']), maxLength: 12 })
const textWithout = (breakers: string[]) =>
  fc.string({ unit: unitOf([...BREAKERS, ' ', ':', '\uFEFF'].filter(c => !breakers.includes(c))), maxLength: 12 })
  // The binary unit may still produce a breaker: keep only what is really free of them.
    .filter(s => !breakers.some(b => s.includes(b)))
const injecting = (breakers: string[]) =>
  fc.tuple(text, fc.constantFrom(...breakers), text).map(([a, b, c]) => a + b + c)

const idArb = fc.oneof(
  { weight: 4, arbitrary: textWithout(['\r', '\n', '\r\n', '\0']) },
  { weight: 2, arbitrary: fc.integer() },
  { weight: 1, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }) },
  { weight: 2, arbitrary: injecting(['\r', '\n', '\r\n', '\0']) }
)
const eventArb = fc.oneof(
  { weight: 4, arbitrary: textWithout(['\r', '\n', '\r\n']) },
  { weight: 1, arbitrary: injecting(['\r', '\n', '\r\n']) }
)
const dataArb = fc.oneof({ weight: 4, arbitrary: text }, { weight: 1, arbitrary: fc.jsonValue() })
const messageArb: fc.Arbitrary<SseMessage> = fc.record(
  { id: idArb, event: eventArb, data: dataArb, retry: fc.nat(), comment: text },
  { requiredKeys: [] }
).filter(message => Object.keys(message).length > 0)

/** The code a message must be refused with, when one of its fields would inject a line. */
function refusalOf (message: SseMessage): string | undefined {
  if (typeof message.id === 'string' && /[\r\n\0]/.test(message.id)) return 'FST_SSE_INVALID_ID'
  if (message.event !== undefined && /[\r\n]/.test(message.event)) return 'FST_SSE_INVALID_EVENT'
  return undefined
}
const validMessageArb = messageArb.filter(message => refusalOf(message) === undefined)

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g
/** Text as the UTF-8 bytes carry it: a lone surrogate has no encoding and arrives as U+FFFD. */
const onWire = (value: string) => value.replace(LONE_SURROGATE, '\uFFFD')
/** The standard's line splitting: CRLF, LF and CR each end a line. */
const linesOf = (value: string) => onWire(value).split(/\r\n|\r|\n/)

/** A yielded value as the message it stands for: anything not a message is the data of one. */
const asMessage = (value: SseMessage | string): SseMessage => typeof value === 'string' ? { data: value } : value

interface Expected {
  spec: ReturnType<typeof readAsSpec>
  parser: ReturnType<typeof readWithParser>
}

/** What the standard says a client reads from these messages, from a fresh connection. */
function expectedOf (messages: SseMessage[]): Expected {
  const spec: Expected['spec'] = { events: [], comments: [], lastEventId: '', reconnectionTime: undefined }
  const parser: Expected['parser'] = { events: [], retries: [], comments: [] }
  for (const message of messages) {
    const id = message.id === undefined ? undefined : onWire(String(message.id))
    const event = message.event === undefined || message.event === '' ? undefined : onWire(message.event)
    if (message.comment !== undefined) {
      spec.comments.push(...linesOf(message.comment))
      parser.comments.push(...linesOf(message.comment))
    }
    if (message.retry !== undefined) {
      spec.reconnectionTime = message.retry
      parser.retries.push(message.retry)
    }
    if (id !== undefined) spec.lastEventId = id
    if (message.data === undefined) continue
    const serialized = typeof message.data === 'string' ? message.data : JSON.stringify(message.data)
    const data = linesOf(serialized).join('\n')
    spec.events.push({ type: event ?? 'message', data, lastEventId: spec.lastEventId })
    parser.events.push({ id, event, data })
  }
  return { spec, parser }
}

/** The frame's own shape: field lines only, one blank line at its end, no CR anywhere. */
function assertWellFormed (frame: string): void {
  assert.ok(frame.endsWith('\n\n'), 'a frame ends with a blank line')
  assert.ok(!frame.includes('\r'), 'a frame never contains CR')
  for (const line of frame.slice(0, -2).split('\n')) {
    assert.match(line, /^(?:: |retry: |id: |event: |data: )/, 'every line is a field the frame meant to write')
  }
}

t.test('property: any message reads back as exactly the event the standard says, or is refused', async t => {
  const numRuns = 1000
  t.doesNotThrow(() => fc.assert(fc.property(messageArb, message => {
    const refusal = refusalOf(message)
    if (refusal !== undefined) {
      assert.throws(() => messageFrame(message, json), { code: refusal })
      assert.throws(() => frameOf(message, json), { code: refusal })
      return
    }
    const frame = frameOf(message, json)
    assert.equal(frame, messageFrame(message, json))
    assertWellFormed(frame)
    const expected = expectedOf([message])
    assert.deepEqual(readAsSpec(bytesOf(frame)), expected.spec)
    assert.deepEqual(readWithParser([bytesOf(frame)]), expected.parser)
  }), { numRuns }), `${numRuns} messages`)
})

t.test('property: any string yielded as data reads back as that data, its line breaks as LF', async t => {
  const numRuns = 500
  t.doesNotThrow(() => fc.assert(fc.property(text, data => {
    const frame = frameOf(data, json)
    assertWellFormed(frame)
    const expected = expectedOf([{ data }])
    assert.deepEqual(readAsSpec(bytesOf(frame)), expected.spec)
    assert.deepEqual(readWithParser([bytesOf(frame)]), expected.parser)
  }), { numRuns }), `${numRuns} strings`)
})

t.test('property: frames back to back read as the same sequence of events, however the bytes are split', async t => {
  const numRuns = 500
  const values = fc.array(fc.oneof(validMessageArb, text), { minLength: 1, maxLength: 8 })
  const cuts = fc.uniqueArray(fc.nat(), { maxLength: 6 })
  t.doesNotThrow(() => fc.assert(fc.property(values, cuts, (values, cuts) => {
    const bytes = bytesOf(values.map(value => frameOf(value, json)).join(''))
    const at = [0, ...new Set(cuts.map(cut => cut % (bytes.length + 1)))].sort((a, b) => a - b)
    const chunks = at.map((start, i) => bytes.subarray(start, at[i + 1] ?? bytes.length))
    const expected = expectedOf(values.map(asMessage))
    assert.deepEqual(readAsSpec(bytes), expected.spec)
    assert.deepEqual(readWithParser(chunks), expected.parser)
  }), { numRuns }), `${numRuns} sequences of up to 8 frames`)
})
