import Fastify, { type FastifyRequest } from 'fastify'
import t from 'tap'
import ssePlugin from '../../lib/index.js'
import { endAtOf, settingsOf, streamSettingsOf, type SsePluginOptions, type SseStreamOptions } from '../../lib/options.js'

const code = 'FST_SSE_INVALID_OPTION'
/** A stand-in with the two methods settingsOf checks to recognize an ioredis client. */
const redisClient = { xadd () {}, duplicate () {} }

t.test('defaults: heartbeat 15000, no retry, JSON.stringify, no compression, history 1000, queue 1000, no redis, prefix sse:, Last-Event-ID up to 512 bytes, idle channels and keys forgotten after 10 min, Redis history kept 24 h', async t => {
  for (const settings of [settingsOf(), settingsOf({})]) {
    t.equal(settings.heartbeat, 15000)
    t.equal(settings.retry, undefined)
    t.equal(settings.serialize, JSON.stringify)
    t.equal(settings.compress, false)
    t.equal(settings.history, 1000)
    t.equal(settings.maxSubscriberQueue, 1000)
    t.equal(settings.redis, undefined)
    t.equal(settings.redisPrefix, 'sse:')
    t.equal(settings.maxLastEventIdLength, 512)
    t.equal(settings.channelIdleTimeout, 600_000)
    t.equal(settings.idempotencyWindow, 600_000)
    t.equal(settings.redisHistoryTtl, 86_400_000)
    t.equal(settings.maxStreams, 10_000)
    t.equal(settings.maxStreamsPerClient, Infinity)
    t.equal(settings.maxChannelSubscribers, Infinity)
    t.equal(settings.connectRate, false)
    t.equal(settings.maxLifetime, false)
    t.equal(settings.writeTimeout, 30_000)
    t.equal(settings.refuseWith, 200)
    t.equal(settings.refusalRetry, 5000)
    t.equal(settings.checkAccept, true, 'a client whose Accept refuses the stream gets 406')
    t.equal(settings.clientKey({ ip: '10.0.0.7' } as FastifyRequest), '10.0.0.7', 'a client is its request.ip')
  }
})

t.test('keeps every valid value given', async t => {
  const given = {
    heartbeat: 5000,
    retry: 3000,
    serialize: (value: unknown) => String(value),
    compress: true,
    history: 10,
    maxSubscriberQueue: 5,
    redis: 'redis://127.0.0.1:6379',
    redisPrefix: 'app:',
    maxLastEventIdLength: 64,
    channelIdleTimeout: 1000,
    idempotencyWindow: 2000,
    redisHistoryTtl: 3000,
    maxStreams: 50,
    maxStreamsPerClient: 5,
    maxChannelSubscribers: 20,
    maxGenerations: 30,
    maxGenerationsPerClient: 3,
    connectRate: { max: 10, windowMs: 1000 },
    clientKey: (request: FastifyRequest) => String(request.headers['x-user']),
    maxLifetime: 60_000,
    writeTimeout: 5000,
    refuseWith: 503 as const,
    refusalRetry: 1000,
    checkAccept: false
  }
  t.strictSame({ ...settingsOf(given) }, given)
  t.equal(settingsOf({ maxStreams: Infinity }).maxStreams, Infinity, 'Infinity: no limit')
  t.equal(settingsOf({ writeTimeout: false }).writeTimeout, false, 'false: no write deadline')
  t.equal(settingsOf({ redis: 'rediss://cache.example:6380' }).redis, 'rediss://cache.example:6380')
  t.equal(settingsOf({ redis: redisClient as unknown as SsePluginOptions['redis'] }).redis, redisClient,
    'an ioredis client is kept as it is')
})

t.test('an explicit 0 is a value where 0 is valid: retry 0, history 0', async t => {
  t.equal(settingsOf({ retry: 0 }).retry, 0)
  t.equal(settingsOf({ history: 0 }).history, 0)
  t.equal(settingsOf({ redisHistoryTtl: 0 }).redisHistoryTtl, 0, 'Redis history that never expires')
})

t.test('false turns heartbeats off, and heartbeat 0 is an error that says so', async t => {
  t.equal(settingsOf({ heartbeat: false }).heartbeat, false)
  t.throws(() => settingsOf({ heartbeat: 0 }), { code, message: /heartbeat.*or false to turn heartbeats off/ })
})

t.test('returns frozen settings', async t => {
  t.ok(Object.isFrozen(settingsOf()))
  t.ok(Object.isFrozen(settingsOf({ retry: 0 })))
})

t.test('rejects every invalid option with FST_SSE_INVALID_OPTION naming the option', async t => {
  const invalid: Record<string, unknown[]> = {
    heartbeat: [0, -1, 1.5, '1000', true, null, Number.NaN, Infinity],
    retry: [-1, 1.5, '0', false, null, Number.NaN, 2 ** 53],
    serialize: ['json', {}, null, false],
    compress: ['true', 1, 0, null, {}],
    checkAccept: ['false', 0, null, {}],
    history: [-1, 1.5, '10', null, Infinity, false],
    maxSubscriberQueue: [0, -1, 2.5, '5', null, false],
    redis: ['127.0.0.1:6379', 'http://127.0.0.1', '', 42, {}, null, { xadd () {} }, false],
    redisPrefix: ['', 5, null, false],
    maxLastEventIdLength: [0, -1, 1.5, '512', null, false, Infinity],
    channelIdleTimeout: [0, -1, 1.5, '1000', null, false, Infinity],
    idempotencyWindow: [0, -1, 1.5, '1000', null, false, Infinity],
    redisHistoryTtl: [-1, 1.5, '1000', null, false, Infinity],
    maxStreams: [0, -1, 1.5, '10', null, false, -Infinity],
    maxStreamsPerClient: [0, 2.5, '5', null, false],
    maxChannelSubscribers: [0, 2.5, '5', null, false],
    connectRate: [true, 5, null, {}, { max: 5 }, { max: 0, windowMs: 1000 }, { max: 5, windowMs: '1s' }],
    clientKey: ['ip', null, 5, false],
    maxLifetime: [0, -1, 1.5, '1000', null, true, Infinity],
    writeTimeout: [0, -1, 1.5, '1000', null, true, Infinity],
    refuseWith: [404, 500, '503', null, false, 0],
    refusalRetry: [0, -1, 1.5, '1000', null, false, Infinity]
  }
  for (const [name, values] of Object.entries(invalid)) {
    for (const value of values) {
      t.throws(() => settingsOf({ [name]: value } as SsePluginOptions),
        { code, message: new RegExp(`option ${name}: `) }, `${name}: ${String(value)}`)
    }
  }
})

t.test('rejects unknown options, listing the known ones, to catch typos', async t => {
  t.throws(() => settingsOf({ hearbeat: 1000 } as unknown as SsePluginOptions),
    { code, message: /option hearbeat: unknown option; the options are heartbeat, retry, serialize/ })
})

t.test('rejects options that are not an object', async t => {
  for (const options of [null, 5, 'heartbeat', true]) {
    t.throws(() => settingsOf(options as unknown as SsePluginOptions), { code, message: /option options: / },
      String(options))
  }
})

t.test('without stream options, a stream uses the plugin settings as they are', async t => {
  const settings = settingsOf({ retry: 100 })
  t.equal(streamSettingsOf(settings, undefined), settings)
})

t.test('stream options override the plugin settings one by one, 0 and false included', async t => {
  const settings = settingsOf({ heartbeat: 1000, retry: 100 })
  const serialize = (value: unknown) => String(value)
  const rest = { maxLifetime: false, writeTimeout: 30_000, refuseWith: 200, refusalRetry: 5000, checkAccept: true }
  t.strictSame({ ...streamSettingsOf(settings, {}) },
    { heartbeat: 1000, retry: 100, serialize: JSON.stringify, compress: false, ...rest })
  t.strictSame({ ...streamSettingsOf(settings, { heartbeat: false, retry: 0 }) },
    { heartbeat: false, retry: 0, serialize: JSON.stringify, compress: false, ...rest })
  t.strictSame({ ...streamSettingsOf(settings, { serialize, compress: true }) },
    { heartbeat: 1000, retry: 100, serialize, compress: true, ...rest })
  t.equal(streamSettingsOf(settingsOf({ compress: true }), { compress: false }).compress, false)
  t.strictSame({ ...streamSettingsOf(settings, { maxLifetime: 1000, writeTimeout: false, refuseWith: 429, refusalRetry: 10 }) },
    { heartbeat: 1000, retry: 100, serialize: JSON.stringify, compress: false, maxLifetime: 1000, writeTimeout: false, refuseWith: 429, refusalRetry: 10, checkAccept: true })
  t.equal(streamSettingsOf(settings, { checkAccept: false }).checkAccept, false)
  t.ok(Object.isFrozen(streamSettingsOf(settings, { heartbeat: 50 })), 'the stream settings are frozen too')
})

t.test('stream options are validated like plugin options, and unknown ones rejected', async t => {
  const settings = settingsOf()
  const invalid: Array<[string, unknown]> = [['heartbeat', 0], ['heartbeat', true], ['retry', -1], ['serialize', 'json'],
    ['maxLifetime', 0], ['writeTimeout', true], ['refuseWith', 404], ['refusalRetry', -5], ['compress', 'gzip'],
    ['compress', 1], ['compress', null], ['checkAccept', 'no'], ['checkAccept', 0]]
  for (const [name, value] of invalid) {
    t.throws(() => streamSettingsOf(settings, { [name]: value } as SseStreamOptions),
      { code, message: new RegExp(`option ${name}: `) }, `${name}: ${String(value)}`)
  }
  t.throws(() => streamSettingsOf(settings, { history: 5 } as SseStreamOptions),
    { code, message: /option history: unknown option; the options are heartbeat, retry, serialize, compress, maxLifetime, writeTimeout, refuseWith, refusalRetry, checkAccept, endAt/ },
    'plugin-wide options are not stream options')
  t.throws(() => streamSettingsOf(settings, { retyr: 5 } as SseStreamOptions), { code, message: /option retyr: / })
  for (const options of [null, 5, 'fast']) {
    t.throws(() => streamSettingsOf(settings, options as unknown as SseStreamOptions),
      { code, message: /option reply.sse options: pass an object/ }, String(options))
  }
})

t.test('endAt, a stream\'s own end: a Date or epoch milliseconds; anything else is an error that says so', async t => {
  t.equal(endAtOf(undefined), undefined)
  t.equal(endAtOf({}), undefined)
  t.equal(endAtOf({ endAt: 1_800_000_000_000 }), 1_800_000_000_000)
  t.equal(endAtOf({ endAt: new Date(1_800_000_000_000) }), 1_800_000_000_000)
  for (const endAt of [new Date('not a date'), Number.NaN, Infinity, '2030-01-01', null]) {
    t.throws(() => endAtOf({ endAt } as SseStreamOptions), { code, message: /option endAt: use a Date or epoch milliseconds/ },
      String(endAt))
  }
})

t.test('app.register() fails with FST_SSE_INVALID_OPTION on invalid options', async t => {
  const cases: unknown[] = [{ heartbeat: 0 }, { retry: -1 }, { hearbeat: 1000 }, { redis: 'localhost' }]
  for (const options of cases) {
    const app = Fastify()
    t.teardown(() => app.close())
    await t.rejects(async () => { await app.register(ssePlugin, options as SsePluginOptions) },
      { code }, JSON.stringify(options))
  }
})

t.test('app.register() succeeds with valid options, 0 included', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await t.resolves(async () => { await app.register(ssePlugin, { heartbeat: false, retry: 0, history: 0 }) })
})
