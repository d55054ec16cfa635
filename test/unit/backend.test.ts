import t from 'tap'
import { compareIds, ID_PATTERN } from '../../lib/channels/backend.js'

t.test('compareIds orders <ms>-<seq> ids by number, not as text', async t => {
  t.ok(compareIds('9-0', '10-0') < 0)
  t.ok(compareIds('10-2', '10-10') < 0)
  t.ok(compareIds('11-0', '10-99') > 0)
  t.equal(compareIds('5-5', '5-5'), 0)
  const ids = ['10-1', '2-3', '2-10', '1795575471114-0', '10-0']
  t.same([...ids].sort(compareIds), ['2-3', '2-10', '10-0', '10-1', '1795575471114-0'])
})

t.test('ID_PATTERN takes ids a backend writes, and no more digits than numbers hold exactly', async t => {
  for (const id of ['0-0', '1795575471114-0', '123456789012345-123456789012345']) t.ok(ID_PATTERN.test(id), id)
  for (const id of ['', '1', '1-', '-1', '1-2-3', 'a-1', '1234567890123456-0', ' 1-1']) t.notOk(ID_PATTERN.test(id), id)
})
