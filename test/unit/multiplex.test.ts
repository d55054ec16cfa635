import t from 'tap'
import { multiplex, type Subscribable } from '../../lib/channels/multiplex.js'
import { preparedFrame, prepare, type PreparedMessage } from '../../lib/frame.js'
import type { ChannelMessage } from '../../lib/index.js'

// The multiplexer on its own, with subscriptions of the test's making (the channels' own are specified
// over HTTP in test/plugin/multiplex.test.ts).

t.test('a subscription that fails fails the stream with its error, after what came before it; the others are closed', async t => {
  let returned = 0
  const failing: Subscribable = {
    position: async () => '1-0',
    subscribe: () => ({
      [Symbol.asyncIterator]: () => ({
        next: () => Promise.reject(new Error('the channel broke')),
        return: async () => { returned++; return { done: true, value: undefined } }
      })
    })
  }
  const steady: Subscribable = {
    position: async () => '0-0',
    subscribe: () => ({
      [Symbol.asyncIterator]: () => {
        let sent = false
        return {
          next: async () => {
            if (sent) return new Promise<IteratorResult<ChannelMessage>>(() => {})
            sent = true
            return { done: false, value: prepare({ id: '1-0', data: 'x' }, JSON.stringify) as ChannelMessage }
          },
          return: async () => { returned++; return { done: true, value: undefined } }
        }
      }
    })
  }
  const source = multiplex(['steady', 'failing'], name => name === 'steady' ? steady : failing, 512)
  const frames: unknown[] = []
  await t.rejects(async () => {
    for await (const frame of source({ signal: new AbortController().signal, lastEventId: undefined } as never)) frames.push(frame)
  }, { message: 'the channel broke' })
  t.equal(frames.length, 2, 'the cursor, and the event before the failure, went out')
  t.equal(returned, 2, 'both subscriptions closed')
})

t.test('a channel whose position cannot be read (the backend down) is read live: the cursor holds the others; with none read, there is no cursor', async t => {
  const subscribedFrom: Array<string | undefined> = []
  const channel = (position: () => Promise<string>): Subscribable => ({
    position,
    subscribe: options => {
      subscribedFrom.push(options?.lastEventId)
      return { [Symbol.asyncIterator]: () => ({ next: async () => ({ done: true, value: undefined }) }) }
    }
  })
  const down = channel(() => Promise.reject(new Error('Redis is down')))
  const first = async (names: string[], of: (name: string) => Subscribable) => {
    const stream = multiplex(names, of, 512)({ signal: new AbortController().signal, lastEventId: undefined } as never)
    const { done, value } = await stream[Symbol.asyncIterator]().next()
    return done === true ? undefined : preparedFrame(value as PreparedMessage)
  }
  t.equal(await first(['up', 'down'], name => name === 'up' ? channel(async () => '5-1') : down), 'id: up=5-1\nevent: sse-cursor\ndata:\n\n')
  t.strictSame(subscribedFrom, ['5-1', undefined], 'the one read is resumed from there, the other read live')
  t.equal(await first(['down'], () => down), undefined, 'no cursor to send')
})
