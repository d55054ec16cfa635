// The comparison client's readers: every data line found once, however the stream is cut into chunks.
import t from 'tap'
import { dataLineCounter, dataLines } from '../../bench/compare/parse.js'

const STREAM = 'retry:2000\n\ndata: {"s":0}\n\n: heartbeat\n\nevent:message\nid:a-1\ndata:{"s":1}\n\ndata: {"s":2}\n\n'
const VALUES = ['{"s":0}', '{"s":1}', '{"s":2}']

/** Every way to cut `text` into two chunks, and into single characters. */
function cuts (text: string): string[][] {
  const splits = Array.from({ length: text.length + 1 }, (_v, i) => [text.slice(0, i), text.slice(i)])
  return [...splits, [...text]]
}

t.test('dataLines yields each data value once, with or without the space after the colon, at every cut', async t => {
  for (const chunks of cuts(STREAM)) {
    const seen: string[] = []
    const feed = dataLines(value => { seen.push(value) })
    for (const chunk of chunks) feed(chunk)
    t.same(seen, VALUES, `cut ${JSON.stringify(chunks.slice(0, 2))}`)
  }
})

t.test('dataLines waits for the end of a line before yielding it', async t => {
  const seen: string[] = []
  const feed = dataLines(value => { seen.push(value) })
  feed('data: {"s":0}')
  t.same(seen, [])
  feed('\n\n')
  t.same(seen, ['{"s":0}'])
})

t.test('dataLines finds a data line at the very start of the body', async t => {
  const seen: string[] = []
  dataLines(value => { seen.push(value) })('data: x\n\n')
  t.same(seen, ['x'])
})

t.test('dataLineCounter counts each data line once at every cut, and nothing else', async t => {
  for (const chunks of cuts(STREAM)) {
    const count = dataLineCounter()
    t.equal(chunks.reduce((sum, chunk) => sum + count(chunk), 0), 3, `cut ${JSON.stringify(chunks.slice(0, 2))}`)
  }
})

t.test('dataLineCounter does not count a line twice when a chunk ends right after "\\ndata:"', async t => {
  const count = dataLineCounter()
  t.equal(count('data: 1\n\n\ndata:'), 2)
  t.equal(count(' 2\n\n'), 0)
})
