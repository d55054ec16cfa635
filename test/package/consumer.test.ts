import t from 'tap'
import { execFile } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join, relative, resolve, sep } from 'node:path'

// The package as a user gets it: `npm pack` (its prepack builds dist/ first, so this never checks a
// stale build), installed with npm into a fresh TypeScript project outside this repo, without
// ioredis (an optional peer), then type-checked with skipLibCheck false: every published .d.ts is
// compiled, so one that imports a module the user lacks fails here as it would for them.

// Packing, installing (from the npm cache) and compiling take several seconds each, more under load.
t.setTimeout(240_000)

const root = resolve(import.meta.dirname, '../..')
const require = createRequire(import.meta.url)
const versionOf = (name: string): string => (require(`${name}/package.json`) as { version: string }).version

/** Run a command to its end; never rejects: the caller asserts on the exit code and shows the output. */
function run (command: string, args: string[], cwd: string): Promise<{ code: number, output: string }> {
  // Without tap's loader and coverage: the commands here run no code of this repo's tests.
  const env = { ...process.env }
  for (const name of Object.keys(env)) {
    if (/^(NODE_OPTIONS|NODE_V8_COVERAGE|TS_NODE_.*|TAP_.*|_TAPJS_.*)$/.test(name)) delete env[name]
  }
  return new Promise(resolve => {
    execFile(command, args, { cwd, env, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1
      resolve({ code, output: `${stdout}${stderr}`.trim() })
    })
  })
}

/** Every file under `dir`, as paths relative to it. */
async function filesUnder (dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true })
  return entries.filter(entry => entry.isFile()).map(entry => relative(dir, join(entry.parentPath, entry.name)))
}

const work = await mkdtemp(join(tmpdir(), 'fastify-sse-stream-consumer-'))
t.teardown(() => rm(work, { recursive: true, force: true }))
const packed = join(work, 'packed')
const app = join(work, 'app')
await mkdir(packed)
await mkdir(app)

const pack = await run('npm', ['pack', '--pack-destination', packed], root)
const [tarball] = (await readdir(packed)).filter(name => name.endsWith('.tgz'))
if (pack.code !== 0 || tarball === undefined) throw new Error(`npm pack failed:\n${pack.output}`)

await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }))
// The versions this repo installed are in the npm cache: only their metadata may need the registry.
const install = await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error',
  join(packed, tarball), `fastify@${versionOf('fastify')}`, `typescript@${versionOf('typescript')}`,
  `@types/node@${versionOf('@types/node')}`], app)
if (install.code !== 0) throw new Error(`npm install failed:\n${install.output}`)
const installed = join(app, 'node_modules', 'fastify-sse-stream')

t.test('the project has the package and not ioredis', async t => {
  const consumerRequire = createRequire(join(app, 'package.json'))
  t.equal(dirname(consumerRequire.resolve('fastify-sse-stream/package.json')), installed)
  t.throws(() => consumerRequire.resolve('ioredis'), { code: 'MODULE_NOT_FOUND' })
})

t.test('a strict TypeScript project with skipLibCheck false compiles against the published types', async t => {
  await writeFile(join(app, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      target: 'ES2022',
      module: 'NodeNext',
      moduleResolution: 'NodeNext',
      strict: true,
      skipLibCheck: false,
      types: ['node'],
      noEmit: true
    },
    files: ['consumer.ts']
  }))
  await writeFile(join(app, 'consumer.ts'), `
import Fastify from 'fastify'
import ssePlugin, { type ChannelMessage, type SsePluginOptions } from 'fastify-sse-stream'
import { openStream, type TestEvent } from 'fastify-sse-stream/testing'

const options: SsePluginOptions = { heartbeat: 15_000, history: 100 }
const app = Fastify()
await app.register(ssePlugin, options)

const news = app.sse.channel<{ title: string }>('news')
app.get('/news', (request, reply) =>
  reply.sse(({ signal }) => news.subscribe({ lastEventId: request.lastEventId, signal })))
app.get('/ticks', { sse: true }, async function * (request) {
  const from: string | undefined = request.lastEventId
  yield { id: from ?? '0', event: 'tick', data: { n: 1 } }
})

const id: string = await news.publish({ title: 'hello' })
const stream = await openStream(app, '/news', { lastEventId: '0-0' })
const events: TestEvent[] = await stream.take(1)
const messages: AsyncIterable<ChannelMessage<{ title: string }>> = news.subscribe({ lastEventId: id })
await stream.close()
await app.close()
export { events, messages }
`)
  const tsc = await run(process.execPath, [join(app, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', app], app)
  t.equal(tsc.code, 0, 'tsc --noEmit passes')
  t.equal(tsc.output, '', 'and reports nothing')
})

t.test('both entry points load without ioredis', async t => {
  const load = await run(process.execPath, ['--input-type=module', '-e', `
const plugin = await import('fastify-sse-stream')
const testing = await import('fastify-sse-stream/testing')
console.log(typeof plugin.default, typeof testing.openStream)
`], app)
  t.equal(load.code, 0, load.output)
  t.equal(load.output, 'function function')
})

t.test('every source map in the package points at a source the package ships', async t => {
  const maps = (await filesUnder(installed)).filter(file => file.endsWith('.js.map'))
  t.ok(maps.includes(join('dist', 'lib', 'index.js.map')), `${maps.length} source maps`)
  for (const map of maps) {
    const { sourceRoot = '', sources } = JSON.parse(await readFile(join(installed, map), 'utf8')) as
      { sourceRoot?: string, sources: string[] }
    for (const source of sources) {
      const path = resolve(installed, dirname(map), sourceRoot, source)
      t.ok(path.startsWith(installed + sep) && existsSync(path), `${map} -> ${relative(installed, path)}`)
    }
  }
})

/** The installed version of a package that exports no ./package.json, read from this repo's node_modules. */
function installedVersion (name: string): string {
  return (JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version
}

t.test('with TypeBox installed, the typebox entry types declared events under skipLibCheck false; a wrong payload does not compile', async t => {
  const add = await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error',
    `typebox@${installedVersion('typebox')}`,
    `@fastify/type-provider-typebox@${installedVersion('@fastify/type-provider-typebox')}`], app)
  t.equal(add.code, 0, add.output)
  const declared = (payload: string): string => `
import Fastify from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import ssePlugin from 'fastify-sse-stream'
import { sseEvents } from 'fastify-sse-stream/typebox'

const Events = sseEvents({ reading: Type.Object({ celsius: Type.Number() }) })
const app = Fastify().withTypeProvider<TypeBoxTypeProvider>()
await app.register(ssePlugin)
const channel = app.sse.channel('readings', { events: Events })
app.get('/readings', { schema: { response: { 200: Events } } }, (_request, reply) =>
  reply.sse([{ event: 'reading', data: ${payload} }]))
await channel.publish({ event: 'reading', data: ${payload} })
`
  await writeFile(join(app, 'consumer.ts'), declared('{ celsius: 21 }'))
  const right = await run(process.execPath, [join(app, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', app], app)
  t.equal(right.code, 0, right.output)
  await writeFile(join(app, 'consumer.ts'), declared("{ celsius: 'warm' }"))
  const wrong = await run(process.execPath, [join(app, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', app], app)
  t.not(wrong.code, 0, 'a string where the schema says number fails')
  t.match(wrong.output, /consumer\.ts\(13,.*\n[^]*consumer\.ts\(14,/, 'both at the route and at the publish')
})
