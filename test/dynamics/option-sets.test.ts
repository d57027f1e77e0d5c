import t from 'tap'
import pino from 'pino'
import { startDataverseEmulator } from '../../sandbox/dataverse/index.ts'
import { DataverseClient } from '../../src/dynamics/dataverse-client.ts'
import { readTableOptionSets, readTableStateStatus } from '../../src/dynamics/attribute-metadata.ts'

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

t.test('how states and statuses pair: each state\'s default status, each status\'s state', async (t) => {
  const lead = await readTableStateStatus(client, 'lead')
  t.same(lead?.states, [{ value: 0, defaultStatus: 1 }, { value: 1, defaultStatus: 3 }, { value: 2, defaultStatus: 4 }])
  t.same(lead?.statuses.map((option) => [option.value, option.state]), [[1, 0], [2, 0], [3, 1], [4, 2], [5, 2], [6, 2], [7, 2]])
  const contact = await readTableStateStatus(client, 'contact')
  t.same(contact, { states: [{ value: 0, defaultStatus: 1 }, { value: 1, defaultStatus: 2 }], statuses: [{ value: 1, state: 0 }, { value: 2, state: 1 }] })
})
