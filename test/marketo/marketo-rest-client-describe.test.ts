import t from 'tap'
import { startMarketoEmulator } from '../../sandbox/marketo/index.ts'
import { MarketoRestClient } from '../../src/marketo/marketo-rest-client.ts'

/** describeLeads against the emulator's Describe2: every field, flattened to what the mapping check reads. */

const emulator = await startMarketoEmulator({
  munchkinId: '123-ABC-456',
  clients: [{ clientId: 'cid', clientSecret: 'secret' }],
  seedPersons: [{ email: 'seed@example.com', customerTier: 'gold' }]
})
t.teardown(async () => { await emulator.close() })

t.test('one REST call lists standard and custom fields, read-only where Marketo says they are not updateable', async (t) => {
  const client = new MarketoRestClient({ baseUrl: emulator.url, clientId: 'cid', clientSecret: 'secret' })
  const fields = await client.describeLeads()
  const byName = new Map(fields.map((field) => [field.name, field]))
  t.same(byName.get('firstName'), { name: 'firstName', dataType: 'string', readOnly: false, length: 255 })
  t.same(byName.get('address'), { name: 'address', dataType: 'text', readOnly: false, length: null }, 'no length: null')
  t.same(byName.get('updatedAt'), { name: 'updatedAt', dataType: 'datetime', readOnly: true, length: null })
  t.match(byName.get('relativeScoring'), { dataType: 'integer', readOnly: true }, 'a Sales Insight score cannot be written')
  t.match(byName.get('microsoftIsDeleted'), { dataType: 'boolean', readOnly: false })
  t.match(byName.get('customerTier'), { dataType: 'string', readOnly: false }, 'a custom field')
  t.equal(client.restCallCount, 1)
})
