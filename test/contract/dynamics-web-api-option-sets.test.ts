import t from 'tap'
import { DynamicsWebApi } from 'dynamics-web-api'
import { startDataverseEmulator } from '../../sandbox/dataverse/index.ts'

/**
 * Unmodified dynamics-web-api 2.5 reads option-set labels from the Dataverse emulator as from
 * Dataverse: `includeAnnotations` sends `Prefer: odata.include-annotations="…FormattedValue"`
 * (learn.microsoft.com "Formatted values"), and `retrieveAttributes` with a cast type and
 * `expand: OptionSet` reads the options ("Query table definitions using the Web API").
 */

// dynamics-web-api honours http_proxy; a proxy would never reach loopback (reference doc §9.1).
for (const name of ['http_proxy', 'https_proxy', 'HTTP_PROXY', 'HTTPS_PROXY']) delete process.env[name]

const dataverse = await startDataverseEmulator()
t.teardown(() => dataverse.close())
const api = new DynamicsWebApi({ serverUrl: dataverse.url, onTokenRefresh: async () => 'any-bearer-the-emulator-accepts' })

t.test('a record read with includeAnnotations carries its option-set labels', async (t) => {
  const leadid = dataverse.store.insert('leads', { lastname: 'Hopper', leadsourcecode: 8 })
  const lead = await api.retrieve<Record<string, unknown>>({
    collection: 'leads', key: leadid, select: ['leadsourcecode', 'statecode'], includeAnnotations: 'OData.Community.Display.V1.FormattedValue'
  })
  t.equal(lead.leadsourcecode, 8)
  t.equal(lead['leadsourcecode@OData.Community.Display.V1.FormattedValue'], 'Web')
  t.equal(lead['statecode@OData.Community.Display.V1.FormattedValue'], 'Open')
})

t.test('the Picklist attributes with their expanded OptionSet', async (t) => {
  const response = await api.retrieveAttributes<{ LogicalName: string, OptionSet: { Options: Array<{ Value: number, Label: { UserLocalizedLabel: { Label: string } } }> } }>({
    entityKey: "LogicalName='lead'", castType: 'Microsoft.Dynamics.CRM.PicklistAttributeMetadata', select: ['LogicalName'], expand: [{ property: 'OptionSet' }]
  })
  const quality = response.value.find((attribute) => attribute.LogicalName === 'leadqualitycode')
  t.same(quality?.OptionSet.Options.map((option) => option.Label.UserLocalizedLabel.Label), ['Hot', 'Warm', 'Cold'])
})
