import t from 'tap'
import { DynamicsWebApi } from 'dynamics-web-api'
import { startDataverseEmulator } from '../../sandbox/dataverse/index.ts'

/**
 * Unmodified dynamics-web-api 2.5 reads attribute metadata from the Dataverse emulator as from
 * Dataverse (learn.microsoft.com, "Query table definitions using the Web API"):
 * `retrieveAttributes` is `GET EntityDefinitions(LogicalName='lead')/Attributes[/<cast>]?$select=…`.
 */

// dynamics-web-api honours http_proxy; a proxy would never reach loopback (reference doc §9.1).
for (const name of ['http_proxy', 'https_proxy', 'HTTP_PROXY', 'HTTPS_PROXY']) delete process.env[name]

const dataverse = await startDataverseEmulator()
t.teardown(() => dataverse.close())
const api = new DynamicsWebApi({ serverUrl: dataverse.url, onTokenRefresh: async () => 'any-bearer-the-emulator-accepts' })

interface Attribute {
  LogicalName: string
  AttributeType: string
  IsValidForUpdate: boolean
  IsValidForCreate: boolean
  MaxLength?: number
  MetadataId: string
  '@odata.type': string
}

t.test('every lead column with its type and whether it can be written, option sets, money and memo by their Dataverse types', async (t) => {
  const response = await api.retrieveAttributes<Attribute>({ entityKey: "LogicalName='lead'", select: ['LogicalName', 'AttributeType', 'IsValidForUpdate', 'IsValidForCreate'] })
  const byName = new Map(response.value.map((attribute) => [attribute.LogicalName, attribute]))
  t.match(byName.get('firstname'), { AttributeType: 'String', IsValidForUpdate: true, IsValidForCreate: true, MetadataId: /^[0-9a-f-]{36}$/ })
  t.notOk('MaxLength' in (byName.get('firstname') ?? {}), 'only the selected properties (and MetadataId)')
  t.match(byName.get('statecode'), { AttributeType: 'State' })
  t.match(byName.get('statuscode'), { AttributeType: 'Status' })
  t.match(byName.get('leadsourcecode'), { AttributeType: 'Picklist' })
  t.match(byName.get('revenue'), { AttributeType: 'Money' })
  t.match(byName.get('description'), { AttributeType: 'Memo' })
  t.match(byName.get('donotphone'), { AttributeType: 'Boolean' })
  t.match(byName.get('createdon'), { AttributeType: 'DateTime', IsValidForUpdate: false, IsValidForCreate: false })
  t.match(byName.get('leadid'), { AttributeType: 'Uniqueidentifier', IsValidForUpdate: false, IsValidForCreate: true })
  t.match(byName.get('ownerid'), { AttributeType: 'Owner', IsValidForUpdate: true }, 'a lookup by its logical name, writable through @odata.bind')
  t.notOk(byName.has('_ownerid_value'), 'the _x_value read-back name is not a column of the metadata')
  t.notOk(byName.has('mkt_leadscore'), 'a contact-only column is not on lead')
})

t.test('MaxLength through the StringAttributeMetadata cast, which keeps string columns only', async (t) => {
  const response = await api.retrieveAttributes<Attribute>({ entityKey: "LogicalName='contact'", castType: 'Microsoft.Dynamics.CRM.StringAttributeMetadata', select: ['LogicalName', 'MaxLength'] })
  const byName = new Map(response.value.map((attribute) => [attribute.LogicalName, attribute]))
  t.match(byName.get('firstname'), { MaxLength: 50, '@odata.type': '#Microsoft.Dynamics.CRM.StringAttributeMetadata' })
  t.match(byName.get('emailaddress1'), { MaxLength: 100 })
  t.notOk(byName.has('description'), 'a Memo column is not a StringAttributeMetadata')
  t.notOk(byName.has('statecode'))
  const memo = await api.retrieveAttributes<Attribute>({ entityKey: "LogicalName='contact'", castType: 'Microsoft.Dynamics.CRM.MemoAttributeMetadata', select: ['LogicalName', 'MaxLength'] })
  t.same(memo.value.map((attribute) => [attribute.LogicalName, attribute.MaxLength]), [['description', 2000]])
})

t.test('MaxLength on the base AttributeMetadata is refused, as is an unknown table', async (t) => {
  await t.rejects(api.retrieveAttributes({ entityKey: "LogicalName='lead'", select: ['LogicalName', 'MaxLength'] }), {
    status: 400,
    message: "Could not find a property named 'MaxLength' on type 'Microsoft.Dynamics.CRM.AttributeMetadata'."
  })
  await t.rejects(api.retrieveAttributes({ entityKey: "LogicalName='nosuchtable'" }), { status: 404, message: /nosuchtable/ })
})

t.test('the sync filter new_synctomkto is a Two Options column of lead and contact, listed by the BooleanAttributeMetadata cast', async (t) => {
  for (const table of ['lead', 'contact']) {
    const response = await api.retrieveAttributes<Attribute>({ entityKey: `LogicalName='${table}'`, castType: 'Microsoft.Dynamics.CRM.BooleanAttributeMetadata', select: ['LogicalName'] })
    const names = response.value.map((attribute) => attribute.LogicalName)
    t.ok(names.includes('new_synctomkto'), table)
    t.ok(names.includes('donotemail') && !names.includes('firstname'), `${table}: Boolean columns only`)
  }
})
