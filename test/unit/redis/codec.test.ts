import t from 'tap'
import { preparedFrame, type PreparedMessage } from '../../../lib/frame.js'
import { BodyCodec, missesEvents, readAnnouncement, readEntry, type Entry } from '../../../lib/channels/redis/codec.js'
import { GAP_EVENT } from '../../../lib/index.js'

// What crosses Redis, without Redis: bodies both ways, entries read by field name, announcements,
// and the one rule that says whether events are missing.

const entry = (id: string, prev: string | undefined): Entry => ({ id, prev, body: undefined })

t.test('an entry is read by field name, in any order; fields it does not know are ignored', async t => {
  t.same(readEntry(['1-1', ['p', '0-9', 'b', 'body']]), { id: '1-1', prev: '0-9', body: 'body' })
  t.same(readEntry(['1-2', ['b', 'body', 'x', 'y', 'p', '']]), { id: '1-2', prev: '', body: 'body' })
  t.same(readEntry(['1-3', ['foreign', 'entry', 'odd']]), { id: '1-3', prev: undefined, body: undefined },
    'an entry another writer left has neither')
})

t.test('an announcement is <id> <prev> <body>; the body may hold spaces; anything else throws', async t => {
  t.same(readAnnouncement('5-1 4-9 [1,"a b",null,null,null]'), { id: '5-1', prev: '4-9', body: '[1,"a b",null,null,null]' })
  t.same(readAnnouncement('5-1  body'), { id: '5-1', prev: '', body: 'body' }, 'the first of a stream has an empty prev')
  for (const payload of ['', 'no-spaces', '5-1 only-prev', 'not-an-id 4-9 body', '5 4-9 body']) {
    t.throws(() => readAnnouncement(payload), /not an announcement of this plugin/, payload)
  }
})

t.test('missesEvents: continuous when the first entry names the id, or nothing followed it', async t => {
  t.equal(missesEvents('1-1', [entry('1-2', '1-1')], '1-2'), false)
  t.equal(missesEvents('1-1', [entry('1-3', '1-2')], '1-3'), true, 'the entry before the first one is gone')
  t.equal(missesEvents('1-1', [], '1-1'), false, 'up to date')
  t.equal(missesEvents('1-1', [], '1-5'), true, 'the stream went on and keeps nothing of it')
  t.equal(missesEvents('', [], ''), false, 'no stream, no id')
  t.equal(missesEvents('', [entry('1-1', '')], '1-1'), false, 'the stream started after the position was read')
  t.equal(missesEvents('1-1', [entry('1-2', undefined)], '1-2'), true, 'a foreign entry breaks the chain')
})

t.test('a body round-trips every field, data serialized once, framed as the stream would', async t => {
  let calls = 0
  const json = new BodyCodec(JSON.stringify)
  const custom = new BodyCodec(value => { calls++; return `<${String(value)}>` })
  const cases: Array<[BodyCodec, object, object, string]> = [
    [json, { data: { a: 1 } }, { data: { a: 1 } }, 'id: 1-1\ndata: {"a":1}\n\n'],
    [json, { data: 'two\nlines' }, { data: 'two\nlines' }, 'id: 1-1\ndata: two\ndata: lines\n\n'],
    [json, { data: new Date(0) }, { data: '"1970-01-01T00:00:00.000Z"' }, 'id: 1-1\ndata: "1970-01-01T00:00:00.000Z"\n\n'],
    [json, { event: 'ping' }, { event: 'ping' }, 'id: 1-1\nevent: ping\n\n'],
    [json, { data: 1, event: 'e', retry: 0, comment: 'c' }, { data: 1, event: 'e', retry: 0, comment: 'c' },
      ': c\nretry: 0\nid: 1-1\nevent: e\ndata: 1\n\n'],
    [custom, { data: 7 }, { data: '<7>' }, 'id: 1-1\ndata: <7>\n\n']
  ]
  for (const [codec, message, decoded, frame] of cases) {
    const back = codec.decode('1-1', codec.encode(message))
    t.match(back, { id: '1-1', ...decoded }, JSON.stringify(message))
    t.equal(preparedFrame(back as PreparedMessage), frame)
    t.ok(Object.isFrozen(back))
  }
  t.equal(calls, 1, 'a custom serialize runs once, on encode')
  t.throws(() => json.encode({ event: 'a\nb' }), { code: 'FST_SSE_INVALID_EVENT' }, 'validated as on publish')
})

t.test('decode refuses what this plugin did not write, saying so', async t => {
  const codec = new BodyCodec(JSON.stringify)
  const refused: Array<[string | undefined, RegExp]> = [
    [undefined, /without a body/],
    ['not json', /JSON/],
    ['{}', /another shape/],
    ['[1,"a",null,null]', /another shape/],
    ['[9,"a",null,null,null]', /another shape/],
    ['[0,"a",null,null,null]', /another shape/],
    ['[1,null,null,null,null]', /another shape/],
    ['[1,"a",5,null,null]', /another shape/],
    ['[1,"a",null,"5",null]', /another shape/],
    ['[1,"a",null,null,5]', /another shape/],
    [JSON.stringify([1, 'spoof', GAP_EVENT, 86_400_000, null]), /reserved event name/],
    ['[1,"a","x\\ny",null,null]', /CR or LF/]
  ]
  for (const [body, message] of refused) t.throws(() => codec.decode('1-1', body), message, String(body))
})
