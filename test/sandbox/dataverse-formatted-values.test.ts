import t from 'tap'
import type { DataverseEmulator } from '../../sandbox/dataverse/index.ts'
import { startedDataverseEmulator } from '../helpers/dataverse-emulator.ts'

/**
 * Option-set labels in the Dataverse emulator over real HTTP (learn.microsoft.com "Formatted values";
 * "Query table definitions using the Web API"): the FormattedValue annotation of an option-set column
 * when the Prefer header asks for it, none otherwise, and the options in the attribute metadata.
 */

const FORMATTED = 'OData.Community.Display.V1.FormattedValue'
const HEADERS = { Authorization: 'Bearer sandbox-token', Accept: 'application/json', 'OData-Version': '4.0' }

const started = startedDataverseEmulator

async function get (emulator: DataverseEmulator, path: string, headers: Record<string, string> = {}): Promise<{ status: number, body: any }> {
  const response = await fetch(`${emulator.url}/api/data/v9.2/${path}`, { headers: { ...HEADERS, ...headers } })
  return { status: response.status, body: await response.json() }
}

async function createLead (emulator: DataverseEmulator, body: Record<string, unknown>): Promise<string> {
  const response = await fetch(`${emulator.url}/api/data/v9.2/leads`, {
    method: 'POST',
    headers: { ...HEADERS, 'Content-Type': 'application/json' },
    body: JSON.stringify(body)
  })
  t.equal(response.status, 204)
  return /\(([^)]+)\)/.exec(response.headers.get('odata-entityid') ?? '')?.[1] ?? ''
}

t.test('a read asked for formatted values labels each option-set column, and only those', async (t) => {
  const emulator = await started(t)
  const id = await createLead(emulator, { lastname: 'Lovelace', leadsourcecode: 8, leadqualitycode: 1 })
  const prefer = { Prefer: `odata.include-annotations="${FORMATTED}"` }
  const { status, body } = await get(emulator, `leads(${id})?$select=lastname,leadsourcecode,leadqualitycode,statecode,statuscode`, prefer)
  t.equal(status, 200)
  t.equal(body.leadsourcecode, 8, 'the value still travels as its number')
  t.equal(body[`leadsourcecode@${FORMATTED}`], 'Web')
  t.equal(body[`leadqualitycode@${FORMATTED}`], 'Hot')
  t.equal(body[`statecode@${FORMATTED}`], 'Open')
  t.equal(body[`statuscode@${FORMATTED}`], 'New')
  t.equal(body[`lastname@${FORMATTED}`], undefined, 'a text column has no formatted value')

  const star = await get(emulator, `leads?$select=leadsourcecode`, { Prefer: 'odata.include-annotations="*"' })
  t.equal(star.body.value[0][`leadsourcecode@${FORMATTED}`], 'Web', '"*" asks for every annotation')

  const plain = await get(emulator, `leads(${id})?$select=leadsourcecode`)
  t.notOk(Object.keys(plain.body).some((key) => key.includes('@OData.Community')), 'no annotation unless asked')
})

t.test('a change-tracked read carries the labels too', async (t) => {
  const emulator = await started(t)
  await createLead(emulator, { lastname: 'Hopper', leadsourcecode: 7 })
  const { status, body } = await get(emulator, 'leads?$select=leadsourcecode', { Prefer: `odata.track-changes,odata.include-annotations="${FORMATTED}"` })
  t.equal(status, 200)
  t.ok(body['@odata.deltaLink'], 'a tracked read')
  t.equal(body.value[0][`leadsourcecode@${FORMATTED}`], 'Trade Show')
})

t.test('the option-set attribute metadata expands its options with their labels', async (t) => {
  const emulator = await started(t)
  const { status, body } = await get(emulator, "EntityDefinitions(LogicalName='lead')/Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata?$select=LogicalName&$expand=OptionSet")
  t.equal(status, 200)
  const source = body.value.find((row: any) => row.LogicalName === 'leadsourcecode')
  t.same(source.OptionSet.Options.find((option: any) => option.Value === 8).Label.UserLocalizedLabel, { Label: 'Web', LanguageCode: 1033 })
  t.notOk(body.value.some((row: any) => row.LogicalName === 'statecode'), 'statecode is a State attribute, not a Picklist')

  const state = await get(emulator, "EntityDefinitions(LogicalName='contact')/Attributes/Microsoft.Dynamics.CRM.StateAttributeMetadata?$select=LogicalName&$expand=OptionSet")
  t.same(state.body.value[0].OptionSet.Options.map((option: any) => [option.Value, option.Label.UserLocalizedLabel.Label]), [[0, 'Active'], [1, 'Inactive']])

  const refused = await get(emulator, "EntityDefinitions(LogicalName='lead')/Attributes/Microsoft.Dynamics.CRM.StringAttributeMetadata?$expand=OptionSet")
  t.equal(refused.status, 400, 'a text column has no OptionSet to expand')
})
