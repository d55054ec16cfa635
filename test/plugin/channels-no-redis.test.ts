import t from 'tap'
import { createRequire } from 'node:module'
import { sep } from 'node:path'
import { buildApp } from '../fixtures/app.js'
import { read } from '../fixtures/channels.js'

// ioredis is an optional peer dependency: an app that does not use Redis must not need it installed.

const ioredisLoaded = (): boolean => Object.keys(createRequire(import.meta.url).cache)
  .some(path => path.includes(`${sep}node_modules${sep}ioredis${sep}`))

t.test('an app whose channels stay in memory never loads ioredis', async t => {
  const { app } = await buildApp(t)
  const channel = app.sse.channel('memory')
  const reader = read(channel.subscribe())
  const id = await channel.publish('hello')
  t.same((await reader.take(1)).map(message => message.id), [id])
  t.equal(ioredisLoaded(), false)
  await import('ioredis')
  t.equal(ioredisLoaded(), true, 'while loading it is seen (the check works)')
})
