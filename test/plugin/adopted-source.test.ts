import t from 'tap'
import { kAdopt, kResume, type StreamSink } from '../../lib/adoption.js'
import { buildApp } from '../fixtures/app.js'
import { logsOf } from '../fixtures/logs.js'
import { until } from '../fixtures/wait.js'

/**
 * A source that hands values to the stream instead of being pulled (the protocol channel
 * subscriptions use). The test drives it: `send` delivers, `end` finishes.
 */
function adoptable (): AsyncIterable<unknown> & { sink?: StreamSink, resumed: number, closed: boolean } {
  const source = {
    sink: undefined as StreamSink | undefined,
    resumed: 0,
    closed: false,
    [Symbol.asyncIterator] () {
      return {
        next: async () => ({ value: undefined, done: true as const }),
        return: async () => { source.closed = true; return { value: undefined, done: true as const } },
        [kAdopt]: (sink: StreamSink) => { source.sink = sink },
        [kResume]: () => { source.resumed++ }
      }
    }
  }
  return source
}

t.test('an adopted source delivers values as frames, and finishing it ends the stream as source-done', async t => {
  const { app, logs } = await buildApp(t)
  const source = adoptable()
  app.get('/events', (_request, reply) => {
    const done = reply.sse(source)
    t.ok(source.sink?.deliver({ id: 1, data: 'a' }), 'room for more')
    t.ok(source.sink?.deliver('b'))
    source.sink?.finish()
    t.notOk(source.sink?.deliver('late'), 'nothing is taken after the end')
    return done
  })
  t.equal((await app.inject('/events')).payload, 'id: 1\ndata: a\n\ndata: b\n\n')
  t.ok(source.closed, 'closed with return() once over')
  t.match(logsOf(logs, 'sse stream ended'), [{ reason: 'source-done', events: 2 }])
})

t.test('an adopted source that fails, or delivers an invalid message, ends the stream with the error logged', async t => {
  const { app, logs } = await buildApp(t)
  const failing = adoptable()
  const invalid = adoptable()
  app.get('/failing', (_request, reply) => {
    const done = reply.sse(failing)
    failing.sink?.deliver('before')
    failing.sink?.finish(new Error('backend lost'))
    return done
  })
  app.get('/invalid', (_request, reply) => {
    const done = reply.sse(invalid)
    t.notOk(invalid.sink?.deliver({ event: 'x\ny', data: 1 }), 'the stream takes no more')
    return done
  })
  t.equal((await app.inject('/failing')).payload, 'data: before\n\n')
  t.equal((await app.inject('/invalid')).payload, '')
  await until(() => logsOf(logs, 'sse stream ended').length === 2)
  t.match(logsOf(logs, 'sse stream ended'), [
    { level: 50, reason: 'error', err: { message: 'backend lost' } },
    { level: 50, reason: 'error', err: { code: 'FST_SSE_INVALID_EVENT' } }
  ])
  t.ok(failing.closed && invalid.closed)
})
