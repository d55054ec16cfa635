import t from 'tap'
import { multiplex, type Subscribable } from '../../lib/channels/multiplex.js'
import { prepare } from '../../lib/frame.js'
import type { ChannelMessage } from '../../lib/index.js'

// The multiplexer on its own, with subscriptions of the test's making (the channels' own are specified
// over HTTP in test/plugin/multiplex.test.ts).

t.test('a subscription that fails fails the stream with its error, after what came before it; the others are closed', async t => {
  let returned = 0
  const failing: Subscribable = {
    subscribe: () => ({
      [Symbol.asyncIterator]: () => ({
        next: () => Promise.reject(new Error('the channel broke')),
        return: async () => { returned++; return { done: true, value: undefined } }
      })
    })
  }
  const steady: Subscribable = {
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
  const source = multiplex(['steady', 'failing'], name => name === 'steady' ? steady : failing)
  const frames: unknown[] = []
  await t.rejects(async () => {
    for await (const frame of source({ signal: new AbortController().signal, lastEventId: undefined } as never)) frames.push(frame)
  }, { message: 'the channel broke' })
  t.equal(frames.length, 1, 'the event before the failure went out')
  t.equal(returned, 2, 'both subscriptions closed')
})
