import t from 'tap'
import { StreamContext } from '../../lib/context.js'
import { forceGc } from '../fixtures/gc.js'

t.test('StreamContext makes its AbortController only when the signal is read, and aborts it then if the stream is over', async t => {
  const request = { lastEventId: '7' } as never
  const early = new StreamContext(request)
  const signal = early.signal
  t.equal(early.signal, signal, 'the same signal on every read')
  t.notOk(signal.aborted)
  early.abort()
  t.ok(signal.aborted, 'a signal read before the end aborts at the end')
  const late = new StreamContext(request)
  late.abort()
  t.ok(late.signal.aborted, 'a signal first read after the end is already aborted')
  t.equal(early.lastEventId, '7', 'the request\'s Last-Event-ID')
  t.equal(early.request, request)
})

t.test('StreamContext holds its signal: one only listened to still aborts after a garbage collection', async t => {
  const context = new StreamContext({} as never)
  let aborted = 0
  // Nothing but the context keeps these signals: an abort listener, and AbortSignal.any, hold none.
  context.signal.addEventListener('abort', () => { aborted++ })
  AbortSignal.any([context.signal]).addEventListener('abort', () => { aborted++ })
  forceGc()
  await new Promise(resolve => setImmediate(resolve))
  forceGc()
  t.notOk(context.aborted)
  context.abort()
  t.ok(context.aborted)
  t.equal(aborted, 2, 'both listeners ran')
})
