import t from 'tap'
import { prepare, preparedFrame, type PreparedMessage } from '../../lib/frame.js'
import { SharedRuns } from '../../lib/shared-run.js'

const event = (id: string, data: string): PreparedMessage => prepare({ id, data }, JSON.stringify)
const framesOf = (messages: PreparedMessage[]): string => messages.map(preparedFrame).join('')

t.test('a run is the frames of its messages, one after the other, as bytes', async t => {
  const run = [event('1', 'a'), event('2', 'é€'), event('3', 'c')]
  t.equal(new SharedRuns().bytesOf(run).toString(), framesOf(run))
})

t.test('streams with the same run get the same Buffer, built once', async t => {
  const runs = new SharedRuns()
  const [a, b, c] = [event('1', 'a'), event('2', 'b'), event('3', 'c')]
  const first = runs.bytesOf([a, b, c])
  t.equal(runs.bytesOf([a, b, c]), first, 'another array with the same messages: the same bytes object')
})

t.test('a run that differs anywhere gets bytes of its own', async t => {
  const runs = new SharedRuns()
  const [a, b, c, d] = [event('1', 'a'), event('2', 'b'), event('3', 'c'), event('4', 'd')]
  const abc = runs.bytesOf([a, b, c])
  const ab = runs.bytesOf([a, b])
  t.not(ab, abc, 'one message fewer')
  t.equal(ab.toString(), framesOf([a, b]))
  const ad = runs.bytesOf([a, d])
  t.not(ad, ab, 'as long, one message different (a notice one stream skipped)')
  t.equal(ad.toString(), framesOf([a, d]))
})

t.test('a run does not keep a slab of the shared pool alive', async t => {
  const bytes = new SharedRuns().bytesOf([event('1', 'a'), event('2', 'b')])
  t.equal(bytes.buffer.byteLength, bytes.length, 'its memory is its own')
})

t.test('a run is not changed by what the caller does to its array afterwards', async t => {
  const runs = new SharedRuns()
  const [a, b, c] = [event('1', 'a'), event('2', 'b'), event('3', 'c')]
  const array = [a, b]
  const first = runs.bytesOf(array)
  array.push(c)
  const second = runs.bytesOf(array)
  t.not(second, first)
  t.equal(second.toString(), framesOf([a, b, c]))
})
