import t from 'tap'
import pino from 'pino'
import { startDataverseEmulator } from '../../sandbox/dataverse/index.ts'
import { DataverseClient } from '../../src/dynamics/dataverse-client.ts'
import { readTableOptionSets } from '../../src/dynamics/attribute-metadata.ts'

/** The option sets read at start-up from the emulated Dataverse's metadata, over real HTTP. */

const emulator = await startDataverseEmulator()
t.teardown(() => emulator.close())
const client = new DataverseClient({
  url: emulator.url,
  tokens: { getAccessToken: async () => 'any-bearer-the-emulator-accepts' },
  logger: pino({ level: 'silent' }),
  maxConcurrentRequests: 4,
  requestTimeoutMs: 10_000
})

t.test('picklist, state and status columns with their options and labels', async (t) => {
  const lead = await readTableOptionSets(client, 'lead')
  t.same(lead.leadqualitycode, [{ value: 1, label: 'Hot' }, { value: 2, label: 'Warm' }, { value: 3, label: 'Cold' }])
  t.match(lead.leadsourcecode, [{ value: 1, label: 'Advertisement' }])
  t.same(lead.statecode?.map((option) => option.label), ['Open', 'Qualified', 'Disqualified'])
  t.ok(lead.statuscode?.some((option) => option.label === 'New' && option.value === 1))
  t.notOk('lastname' in lead, 'a text column has no options')
  const contact = await readTableOptionSets(client, 'contact')
  t.same(contact.statecode, [{ value: 0, label: 'Active' }, { value: 1, label: 'Inactive' }])
})
