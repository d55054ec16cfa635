import t from 'tap'
import { buildApp } from '../fixtures/app.js'
import { forceGc } from '../fixtures/gc.js'

// Issue 8, item 8: a kept event's bytes were a slice of Node's shared 8 KiB buffer pool, and a slice
// keeps its whole slab alive: a quiet channel's 77 KiB of history retained 3.2-3.9 MiB.

const EVENTS = 1000

t.test('a channel history holds its own bytes, not the pool slabs other code allocated beside them', async t => {
  const { app } = await buildApp(t, { history: EVENTS }, { logger: false })
  const channel = app.sse.channel('quiet')
  forceGc()
  const before = process.memoryUsage().arrayBuffers
  let kept = 0
  for (let n = 0; n < EVENTS; n++) {
    const id = await channel.publish({ n, text: 'a small event' })
    kept += Buffer.byteLength(`id: ${id}\ndata: {"n":${n},"text":"a small event"}\n\n`)
    // The rest of the app allocating small buffers from the same pool meanwhile (a socket read, a
    // header), dropped at once.
    Buffer.from('x'.repeat(4000))
  }
  forceGc()
  const growth = process.memoryUsage().arrayBuffers - before
  t.comment(`history ${kept} bytes, array buffers grew ${growth} bytes`)
  t.ok(growth < 2 * kept + 16 * 1024, `${growth} bytes held for ${kept} bytes of history`)
})
