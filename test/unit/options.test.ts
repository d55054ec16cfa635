import Fastify from 'fastify'
import t from 'tap'
import ssePlugin from '../../lib/index.js'
import { settingsOf, streamSettingsOf, type SsePluginOptions, type SseStreamOptions } from '../../lib/options.js'

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
    redisHistoryTtl: 3000
  }
  t.strictSame({ ...settingsOf(given) }, given)
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
    history: [-1, 1.5, '10', null, Infinity, false],
    maxSubscriberQueue: [0, -1, 2.5, '5', null, false],
    redis: ['127.0.0.1:6379', 'http://127.0.0.1', '', 42, {}, null, { xadd () {} }, false],
    redisPrefix: ['', 5, null, false],
    maxLastEventIdLength: [0, -1, 1.5, '512', null, false, Infinity],
    channelIdleTimeout: [0, -1, 1.5, '1000', null, false, Infinity],
    idempotencyWindow: [0, -1, 1.5, '1000', null, false, Infinity],
    redisHistoryTtl: [-1, 1.5, '1000', null, false, Infinity]
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
  t.strictSame({ ...streamSettingsOf(settings, {}) },
    { heartbeat: 1000, retry: 100, serialize: JSON.stringify, compress: false })
  t.strictSame({ ...streamSettingsOf(settings, { heartbeat: false, retry: 0 }) },
    { heartbeat: false, retry: 0, serialize: JSON.stringify, compress: false })
  t.strictSame({ ...streamSettingsOf(settings, { serialize, compress: true }) },
    { heartbeat: 1000, retry: 100, serialize, compress: true })
  t.equal(streamSettingsOf(settingsOf({ compress: true }), { compress: false }).compress, false)
  t.ok(Object.isFrozen(streamSettingsOf(settings, { heartbeat: 50 })), 'the stream settings are frozen too')
})

t.test('stream options are validated like plugin options, and unknown ones rejected', async t => {
  const settings = settingsOf()
  const invalid: Array<[string, unknown]> = [['heartbeat', 0], ['heartbeat', true], ['retry', -1], ['serialize', 'json'],
    ['compress', 'gzip'], ['compress', 1], ['compress', null]]
  for (const [name, value] of invalid) {
    t.throws(() => streamSettingsOf(settings, { [name]: value } as SseStreamOptions),
      { code, message: new RegExp(`option ${name}: `) }, `${name}: ${String(value)}`)
  }
  t.throws(() => streamSettingsOf(settings, { history: 5 } as SseStreamOptions),
    { code, message: /option history: unknown option; the options are heartbeat, retry, serialize, compress$/ },
    'plugin-wide options are not stream options')
  t.throws(() => streamSettingsOf(settings, { retyr: 5 } as SseStreamOptions), { code, message: /option retyr: / })
  for (const options of [null, 5, 'fast']) {
    t.throws(() => streamSettingsOf(settings, options as unknown as SseStreamOptions),
      { code, message: /option reply.sse options: pass an object/ }, String(options))
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
