import t from 'tap'
import { once } from 'node:events'
import { connect, type AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import Fastify from 'fastify'
import ssePlugin from '../../lib/index.js'

// Issue 7, found running the suite on Node 20.19.0: a stream answers a request that said
// `Connection: close` with `connection: keep-alive` (set in lib/reply-sse.ts), and Node then keeps
// the socket open. A client that trusts the header sends its next request on that socket: Node
// 20.20+, 22 and 24 answer it 400 "Client Error" (data after Connection: close), Node 20.19 never
// answers. The heartbeat test in test/plugin/lifecycle.test.ts hung on 20.19.0 this way, and passes
// on later versions only because a 400 body has no heartbeat in it.
// Fixed: the stream no longer sets `connection` itself; Node writes `Connection: keep-alive` exactly
// when it keeps the socket, and `Connection: close` otherwise.

const requests = {
  'HTTP/1.1 with Connection: close': 'GET /events HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\nConnection: close\r\n\r\n',
  'HTTP/1.0 without keep-alive': 'GET /events HTTP/1.0\r\nHost: test\r\nAccept: text/event-stream\r\n\r\n'
}

for (const [what, request] of Object.entries(requests)) {
  t.test(`a stream answering ${what} says Connection: close and the server closes the socket`, async t => {
    const app = Fastify()
    await app.register(ssePlugin, { heartbeat: false })
    app.get('/events', (_request, reply) => reply.sse(['a']))
    t.teardown(() => app.close())
    await app.listen({ port: 0, host: '127.0.0.1' })
    const socket = connect((app.server.address() as AddressInfo).port, '127.0.0.1')
    t.teardown(() => socket.destroy())
    let received = ''
    socket.setEncoding('utf8').on('data', (text: string) => { received += text })
    const closed = once(socket, 'close').then(() => true)
    socket.write(request)
    // Bounded: when the server keeps the socket, this fails instead of waiting for tap's timeout.
    const closedInTime = await Promise.race([closed, sleep(2000, false, { ref: false })])
    const head = received.slice(0, received.indexOf('\r\n\r\n')).toLowerCase()
    t.match(head, /^http\/1\.[01] 200 /)
    t.match(head, /\r\nconnection: close(\r\n|$)/, 'the response says the connection closes')
    t.notMatch(head, /\r\nconnection: keep-alive/, 'and does not say it stays open')
    t.ok(closedInTime, 'the server closed the socket after the stream')
  })
}
