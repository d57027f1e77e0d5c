import t from 'tap'
import pino from 'pino'
import { startDataverseEmulator } from '../../sandbox/dataverse/index.ts'
import { DataverseClient } from '../../src/dynamics/dataverse-client.ts'
import { readPersonTableSchemas, readSyncFilterTables } from '../../src/dynamics/attribute-metadata.ts'

/** Lead and contact columns read from the Dataverse emulator's metadata, lengths joined from the text casts. */

const emulator = await startDataverseEmulator()
t.teardown(async () => { await emulator.close() })
const client = new DataverseClient({
  url: emulator.url,
  tokens: { getAccessToken: async () => 'any-bearer-the-emulator-accepts' },
  logger: pino({ level: 'silent' }),
  maxConcurrentRequests: 4,
  requestTimeoutMs: 10_000
})

t.test('both tables, every column with its type, writability and, for text, its length; three requests a table', async (t) => {
  const before = emulator.requestCount({ entitySet: 'EntityDefinitions' })
  const schema = await readPersonTableSchemas(client)
  t.equal(emulator.requestCount({ entitySet: 'EntityDefinitions' }) - before, 6)
  const lead = new Map(schema.lead.map((attribute) => [attribute.LogicalName, attribute]))
  const contact = new Map(schema.contact.map((attribute) => [attribute.LogicalName, attribute]))
  t.same(lead.get('firstname'), { LogicalName: 'firstname', AttributeType: 'String', IsValidForUpdate: true, IsValidForCreate: true, MaxLength: 50 })
  t.same(lead.get('description'), { LogicalName: 'description', AttributeType: 'Memo', IsValidForUpdate: true, IsValidForCreate: true, MaxLength: 2000 })
  t.same(lead.get('statecode'), { LogicalName: 'statecode', AttributeType: 'State', IsValidForUpdate: true, IsValidForCreate: true }, 'no MaxLength on a non-text column')
  t.match(lead.get('createdon'), { AttributeType: 'DateTime', IsValidForUpdate: false })
  t.ok(lead.has('companyname') && !contact.has('companyname'), 'each table its own columns')
  t.match(contact.get('mkt_leadscore'), { AttributeType: 'Integer', IsValidForUpdate: true })
})

t.test('the tables with the sync filter column, one request a table', async (t) => {
  const before = emulator.requestCount({ entitySet: 'EntityDefinitions' })
  t.same(await readSyncFilterTables(client), ['lead', 'contact'], 'the emulated org has new_synctomkto on both')
  t.equal(emulator.requestCount({ entitySet: 'EntityDefinitions' }) - before, 2)
  const lacking = { retrieveMultiple: async <T>(path: string) => (path.includes("'contact'") ? [{ LogicalName: 'donotemail' }] : [{ LogicalName: 'new_synctomkto' }]) as T[] }
  t.same(await readSyncFilterTables(lacking), ['lead'], 'a table whose Boolean columns do not include it has no filter')
})
