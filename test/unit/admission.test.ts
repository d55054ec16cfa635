import t from 'tap'
import type { FastifyRequest } from 'fastify'
import { Admission, ConnectRate } from '../../lib/admission.js'
import { settingsOf, type SsePluginOptions } from '../../lib/options.js'

const request = (ip: string): FastifyRequest => ({ ip, headers: {} }) as FastifyRequest
const admission = (options: SsePluginOptions): Admission => new Admission(settingsOf(options))

t.test('connect rate: up to max starts per window per client; other clients are not touched', async t => {
  const rate = new ConnectRate(3, 1000, 0)
  t.same([rate.take('a', 0), rate.take('a', 10), rate.take('a', 20), rate.take('a', 30)], [true, true, true, false])
  t.ok(rate.take('b', 40), 'another client has its own count')
})

t.test('connect rate: the window slides; the previous window weighs by how much of it still overlaps', async t => {
  const rate = new ConnectRate(4, 1000, 0)
  for (let i = 0; i < 4; i++) t.ok(rate.take('a', 900))
  t.notOk(rate.take('a', 999), 'full at the end of the first window')
  // At 1250 the sliding window still covers 75% of the first: 4 * 0.75 = 3 of 4 used.
  t.ok(rate.take('a', 1250), 'one more fits a quarter into the next window')
  t.notOk(rate.take('a', 1250), '3 + 1 = 4: full again')
  // At 1750 only 25% of the first remains: 4 * 0.25 + 1 = 2 used.
  t.ok(rate.take('a', 1750))
  t.ok(rate.take('a', 1750))
  t.notOk(rate.take('a', 1750))
})

t.test('connect rate: a client quiet for two windows starts from nothing (the old windows are dropped, not swept)', async t => {
  const rate = new ConnectRate(2, 1000, 0)
  t.ok(rate.take('a', 0))
  t.ok(rate.take('a', 1))
  t.notOk(rate.take('a', 2))
  t.ok(rate.take('a', 2500), 'two windows later: the previous window is empty')
  t.ok(rate.take('a', 2501))
  t.notOk(rate.take('a', 2502))
})

t.test('limits are counters: streams per app, per client, per channel, in that order', async t => {
  const limits = admission({ maxStreams: 3, maxStreamsPerClient: 2, maxChannelSubscribers: 5 })
  const key = limits.keyOf(request('10.0.0.1'))
  t.equal(key, '10.0.0.1')
  t.equal(limits.refusal(key, 2, 0), undefined)
  t.equal(limits.refusal(key, 3, 0), 'max-streams')
  t.equal(limits.refusal(key, 0, 6), 'channel-subscribers', 'subscribers counts the new one: 6 > 5')
  t.equal(limits.refusal(key, 0, 5), undefined)
  limits.opened(key)
  limits.opened(key)
  t.equal(limits.refusal(key, 2, 0), 'client-streams')
  t.equal(limits.refusal('10.0.0.2', 2, 0), undefined, 'another client is not counted with it')
  limits.closed(key)
  t.equal(limits.refusal(key, 1, 0), undefined, 'a slot freed is a slot again')
  limits.closed(key)
  t.equal(limits.clients, 0, 'a client with no stream left is forgotten')
})

t.test('without per-client limits no key is computed (clientKey is never called)', async t => {
  let called = 0
  const limits = admission({ clientKey: () => { called++; return 'x' } })
  t.equal(limits.keyOf(request('10.0.0.1')), undefined)
  limits.opened(undefined)
  limits.closed(undefined)
  t.equal(limits.clients, 0)
  t.equal(called, 0)
  t.equal(admission({ maxStreamsPerClient: 1, clientKey: () => 'user-7' }).keyOf(request('10.0.0.1')), 'user-7',
    'with one, the clientKey option names the client')
})

t.test('a refused start does not count toward the connect rate', async t => {
  const limits = admission({ maxStreams: 1, connectRate: { max: 1, windowMs: 60_000 } })
  t.equal(limits.refusal('a', 1, 0), 'max-streams')
  t.equal(limits.refusal('a', 0, 0), undefined, 'the first admitted start counts')
  t.equal(limits.refusal('a', 0, 0), 'connect-rate')
})
