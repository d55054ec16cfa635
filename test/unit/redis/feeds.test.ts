import t from 'tap'
import pino from 'pino'
import { BodyCodec, type Entry } from '../../../lib/channels/redis/codec.js'
import { Feeds, type FeedRedis } from '../../../lib/channels/redis/feeds.js'
import { deferred } from '../../fixtures/wait.js'

// A feed's bookkeeping, with Redis answers scripted by the test: the orders of arrival a real Redis
// produces only by chance (announcements overtaking a fetch, holes found while catching up).

const codec = new BodyCodec(JSON.stringify)
const names = { stream: (name: string) => `s:${name}`, announcement: (name: string) => `a:${name}` }
const body = (text: string): string => codec.encode({ data: text })
const entry = (id: string, prev: string): Entry => ({ id, prev, body: body(id) })
const announce = (id: string, prev: string): string => `${id} ${prev} ${body(id)}`

function setup () {
  const fetches: Array<{ after: string, answer: ReturnType<typeof deferred<[string, Entry[]]>> }> = []
  const position = deferred<string>()
  const redis: FeedRedis = {
    now: () => 0,
    available: () => true,
    position: async () => position.promise,
    fetch: (_stream, after) => {
      const answer = deferred<[string, Entry[]]>()
      fetches.push({ after, answer })
      return answer.promise
    },
    subscribe: async () => {},
    unsubscribe: () => {}
  }
  const received: string[] = []
  const sink = {
    deliver: (_channel: string, message: { id: string }) => { received.push(message.id) },
    gap: (_channel: string, lastId: string) => { received.push(`gap after ${lastId}`) }
  }
  const feeds = new Feeds(redis, names, codec, sink, pino({ level: 'silent' }))
  return { feeds, fetches, position, received }
}

const tick = (): Promise<void> => new Promise(resolve => setImmediate(resolve))

t.test('a hole found among the announcements held during a catch-up starts another round; each event once, in order', async t => {
  const { feeds, fetches, position, received } = setup()
  feeds.watch('c')
  position.resolve('1-1')
  await tick()
  t.same(fetches.map(fetch => fetch.after), ['1-1'], 'the first round fetches from where the stream stood')
  feeds.accept('a:c', announce('1-3', '1-2'))
  feeds.accept('a:c', announce('1-5', '1-4'))
  fetches[0]!.answer.resolve(['1-3', [entry('1-2', '1-1'), entry('1-3', '1-2')]])
  await tick()
  t.same(fetches.map(fetch => fetch.after), ['1-1', '1-3'], 'held 1-5 does not follow 1-3: fetch again')
  feeds.accept('a:c', announce('1-6', '1-5'))
  fetches[1]!.answer.resolve(['1-5', [entry('1-4', '1-3'), entry('1-5', '1-4')]])
  await tick()
  t.same(received, ['1-2', '1-3', '1-4', '1-5', '1-6'])
  feeds.accept('a:c', announce('1-5', '1-4'))
  feeds.accept('a:c', announce('1-7', '1-6'))
  t.same(received.slice(5), ['1-7'], 'a late copy of a fetched announcement is dropped; the next flows')
})

t.test('an announcement the stream does not hold (forged on the pub/sub channel) costs one fetch, not a loop', async t => {
  const { feeds, fetches, position, received } = setup()
  feeds.watch('c')
  position.resolve('1-1')
  await tick()
  fetches[0]!.answer.resolve(['1-1', []])
  await tick()
  feeds.accept('a:c', announce('999999999999999-0', 'forged'))
  t.same(fetches.map(fetch => fetch.after), ['1-1', '1-1'], 'it does not follow 1-1: fetch')
  fetches[1]!.answer.resolve(['1-1', []])
  await tick()
  t.equal(fetches.length, 2, 'the stream answered for it: dropped, no other round')
  feeds.accept('a:c', announce('1-2', '1-1'))
  t.same(received, ['1-2'], 'and the feed goes on')
})

t.test('a fetch that fails: a gap notice, then what was held and what comes next, as it is', async t => {
  const { feeds, fetches, position, received } = setup()
  feeds.watch('c')
  position.resolve('1-1')
  await tick()
  feeds.accept('a:c', announce('1-4', '1-3'))
  fetches[0]!.answer.promise.catch(() => {})
  fetches[0]!.answer.resolve(Promise.reject(new Error('Redis went')) as never)
  await tick()
  feeds.accept('a:c', announce('1-5', '1-4'))
  t.same(received, ['gap after 1-1', '1-4', '1-5'])
})

t.test('a channel unwatched during its catch-up delivers nothing', async t => {
  const { feeds, fetches, position, received } = setup()
  feeds.watch('c')
  position.resolve('1-1')
  await tick()
  feeds.unwatch('c')
  fetches[0]!.answer.resolve(['1-2', [entry('1-2', '1-1')]])
  await tick()
  feeds.accept('a:c', announce('1-3', '1-2'))
  t.same(received, [])
})

t.test('a fetch that fails with nothing held: a gap notice; the feed stays where it was and asks again at the next hole', async t => {
  const { feeds, fetches, position, received } = setup()
  feeds.watch('c')
  position.resolve('1-1')
  await tick()
  fetches[0]!.answer.promise.catch(() => {})
  fetches[0]!.answer.resolve(Promise.reject(new Error('Redis went')) as never)
  await tick()
  feeds.accept('a:c', announce('1-2', '1-1'))
  t.same(received, ['gap after 1-1', '1-2'], 'the next event that follows 1-1 flows')
})

t.test('asked to catch up again while a round runs (the connection came back meanwhile): one more round, nothing twice', async t => {
  const { feeds, fetches, position, received } = setup()
  feeds.watch('c')
  position.resolve('1-1')
  await tick()
  feeds.resubscribe()
  await tick()
  fetches[0]!.answer.resolve(['1-2', [entry('1-2', '1-1')]])
  await tick()
  t.same(fetches.map(fetch => fetch.after), ['1-1', '1-2'], 'a second round, from where the first ended')
  fetches[1]!.answer.resolve(['1-2', []])
  await tick()
  feeds.accept('a:c', announce('1-3', '1-2'))
  t.same(received, ['1-2', '1-3'])
})

t.test('a position Redis did not answer is asked again a second later, unless the channel is no longer watched by then', async t => {
  let asked = 0
  const redis: FeedRedis = {
    now: () => 0,
    available: () => true,
    position: async () => { asked++; throw new Error('timed out') },
    fetch: () => new Promise(() => {}),
    subscribe: async () => {},
    unsubscribe: () => {}
  }
  const sink = { deliver: () => {}, gap: () => {} }
  const watched = new Feeds(redis, names, codec, sink, pino({ level: 'silent' }))
  watched.watch('c')
  await tick()
  t.equal(asked, 1)
  watched.unwatch('c')
  await new Promise(resolve => setTimeout(resolve, 1300))
  t.equal(asked, 1, 'not asked again for a channel no longer watched')
})
