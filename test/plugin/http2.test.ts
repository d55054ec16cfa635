import t from 'tap'
import http2 from 'node:http2'
import { buildApp } from '../fixtures/app.js'
import { bodyOf, urlOf } from '../fixtures/http.js'

for (const retry of [1000, undefined]) {
  t.test(`over HTTP/2 the stream has no connection header and the frames are the same (retry ${retry})`, async t => {
    const warnings: Error[] = []
    const onWarning = (warning: Error): void => { warnings.push(warning) }
    process.on('warning', onWarning)
    t.teardown(() => { process.removeListener('warning', onWarning) })
    const { app } = await buildApp(t, retry === undefined ? {} : { retry }, { http2: true } as never)
    app.get('/events', (_request, reply) => reply.sse([{ id: 1, data: 'a' }, 'b']))
    const client = http2.connect(await urlOf(app))
    t.teardown(() => { client.close() })
    const stream = client.request({ ':path': '/events', accept: 'text/event-stream' })
    const headers = await new Promise<http2.IncomingHttpHeaders>(resolve => stream.on('response', resolve))
    const body = await bodyOf(stream)
    t.equal(headers[':status'], 200)
    t.equal(headers['content-type'], 'text/event-stream; charset=utf-8')
    t.equal(headers.connection, undefined)
    t.equal(body, (retry === undefined ? '' : `retry: ${retry}\n\n`) + 'id: 1\ndata: a\n\ndata: b\n\n')
    t.same(warnings.map(warning => warning.message), [], 'Node had nothing to warn about')
  })
}

t.test('over HTTP/2 connection-specific headers a route set are left out, as HTTP/2 requires, instead of failing the stream', async t => {
  const { app } = await buildApp(t, {}, { http2: true } as never)
  app.get('/events', (_request, reply) => {
    reply.header('keep-alive', 'timeout=5').header('x-kept', 'yes')
    return reply.sse(['a'])
  })
  const client = http2.connect(await urlOf(app))
  t.teardown(() => { client.close() })
  const stream = client.request({ ':path': '/events', accept: 'text/event-stream' })
  const headers = await new Promise<http2.IncomingHttpHeaders>(resolve => stream.on('response', resolve))
  const body = await bodyOf(stream)
  t.equal(headers['keep-alive'], undefined)
  t.equal(headers['x-kept'], 'yes')
  t.equal(body, 'data: a\n\n')
})
