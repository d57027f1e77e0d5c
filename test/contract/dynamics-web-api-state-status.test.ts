import t from 'tap'
import { DynamicsWebApi } from 'dynamics-web-api'
import { startDataverseEmulator } from '../../sandbox/dataverse/index.ts'

/**
 * Unmodified dynamics-web-api 2.5 against the Dataverse emulator's states and statuses, as Dataverse
 * serves them: the State column's options carry `DefaultStatus` (StateOptionMetadata), the Status
 * column's options their `State` (StatusOptionMetadata); a write leaving a status outside its state
 * is refused with InvalidStateCodeStatusCode `0x80048408`, in a PATCH and in UpdateMultiple.
 */

// dynamics-web-api honours http_proxy; a proxy would never reach loopback (reference doc §9.1).
for (const name of ['http_proxy', 'https_proxy', 'HTTP_PROXY', 'HTTPS_PROXY']) delete process.env[name]

const dataverse = await startDataverseEmulator()
t.teardown(() => dataverse.close())
const api = new DynamicsWebApi({ serverUrl: dataverse.url, onTokenRefresh: async () => 'any-bearer-the-emulator-accepts' })

const INVALID_PAIR = 'State code is invalid or state code is valid but status code is invalid for a specified state code.'

async function rejection (promise: Promise<unknown>): Promise<{ status: number, code: string, message: string }> {
  try {
    await promise
  } catch (error) {
    return error as { status: number, code: string, message: string }
  }
  throw new Error('expected a rejection')
}

interface OptionAttribute<Option> { LogicalName: string, OptionSet: { Options: Option[] } }

t.test('the lead\'s State options carry their DefaultStatus', async (t) => {
  const response = await api.retrieveAttributes<OptionAttribute<{ Value: number, DefaultStatus: number, InvariantName: string }>>({
    entityKey: "LogicalName='lead'", castType: 'Microsoft.Dynamics.CRM.StateAttributeMetadata', select: ['LogicalName'], expand: [{ property: 'OptionSet' }]
  })
  const options = response.value.find((attribute) => attribute.LogicalName === 'statecode')?.OptionSet.Options
  t.same(options?.map(({ Value, DefaultStatus, InvariantName }) => ({ Value, DefaultStatus, InvariantName })), [
    { Value: 0, DefaultStatus: 1, InvariantName: 'Open' },
    { Value: 1, DefaultStatus: 3, InvariantName: 'Qualified' },
    { Value: 2, DefaultStatus: 4, InvariantName: 'Disqualified' }
  ])
})

t.test('the lead\'s and the contact\'s Status options carry their State', async (t) => {
  const lead = await api.retrieveAttributes<OptionAttribute<{ Value: number, State: number }>>({
    entityKey: "LogicalName='lead'", castType: 'Microsoft.Dynamics.CRM.StatusAttributeMetadata', select: ['LogicalName'], expand: [{ property: 'OptionSet' }]
  })
  t.same(lead.value.find((attribute) => attribute.LogicalName === 'statuscode')?.OptionSet.Options.map(({ Value, State }) => [Value, State]),
    [[1, 0], [2, 0], [3, 1], [4, 2], [5, 2], [6, 2], [7, 2]])
  const contact = await api.retrieveAttributes<OptionAttribute<{ Value: number, State: number }>>({
    entityKey: "LogicalName='contact'", castType: 'Microsoft.Dynamics.CRM.StatusAttributeMetadata', select: ['LogicalName'], expand: [{ property: 'OptionSet' }]
  })
  t.same(contact.value.find((attribute) => attribute.LogicalName === 'statuscode')?.OptionSet.Options.map(({ Value, State }) => [Value, State]), [[1, 0], [2, 1]])
})

t.test('a PATCH of a valid pair is taken', async (t) => {
  const leadid = dataverse.store.insert('leads', { lastname: 'Hopper' })
  await api.update({ collection: 'leads', key: leadid, data: { statecode: 2, statuscode: 6 } })
  t.match(dataverse.store.get('leads', leadid), { statecode: 2, statuscode: 6 })
  await api.update({ collection: 'leads', key: leadid, data: { statuscode: 5 } })
  t.match(dataverse.store.get('leads', leadid), { statecode: 2, statuscode: 5 }, 'a status of the record\'s own state, alone')
})

t.test('a PATCH leaving a status outside its state is refused with 0x80048408 and writes nothing', async (t) => {
  const leadid = dataverse.store.insert('leads', { lastname: 'Lovelace' })
  for (const data of [{ statecode: 1, statuscode: 4 }, { statuscode: 3 }, { statecode: 2 }]) {
    const error = await rejection(api.update({ collection: 'leads', key: leadid, data: { ...data, jobtitle: 'Countess' } }))
    t.equal(error.status, 400, JSON.stringify(data))
    t.equal(error.code, '0x80048408')
    t.equal(error.message, INVALID_PAIR)
  }
  t.match(dataverse.store.get('leads', leadid), { statecode: 0, statuscode: 1 })
  t.not(dataverse.store.get('leads', leadid)?.jobtitle, 'Countess')
})

t.test('UpdateMultiple with one invalid pair is refused whole with 0x80048408', async (t) => {
  const good = dataverse.store.insert('leads', { lastname: 'Good' })
  const bad = dataverse.store.insert('leads', { lastname: 'Bad' })
  const error = await rejection(api.callAction({
    collection: 'leads',
    actionName: 'Microsoft.Dynamics.CRM.UpdateMultiple',
    action: {
      Targets: [
        { '@odata.type': 'Microsoft.Dynamics.CRM.lead', leadid: good, statecode: 1, statuscode: 3 },
        { '@odata.type': 'Microsoft.Dynamics.CRM.lead', leadid: bad, statecode: 0, statuscode: 7 }
      ]
    }
  }))
  t.equal(error.status, 400)
  t.equal(error.code, '0x80048408')
  t.equal(error.message, INVALID_PAIR)
  t.match(dataverse.store.get('leads', good), { statecode: 0, statuscode: 1 }, 'one transaction: the valid target is not written either')
  await api.callAction({
    collection: 'leads',
    actionName: 'Microsoft.Dynamics.CRM.UpdateMultiple',
    action: { Targets: [{ '@odata.type': 'Microsoft.Dynamics.CRM.lead', leadid: good, statecode: 1, statuscode: 3 }] }
  })
  t.match(dataverse.store.get('leads', good), { statecode: 1, statuscode: 3 })
})

t.test('a create with a status outside its state is refused too', async (t) => {
  const error = await rejection(api.create({ collection: 'contacts', data: { lastname: 'Byron', statuscode: 2 } }))
  t.equal(error.code, '0x80048408')
})
