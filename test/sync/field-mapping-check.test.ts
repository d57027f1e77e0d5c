import t from 'tap'
import {
  areCompatibleTypes, assertFieldMappingMatchesSchemas, checkFieldMapping,
  type DataverseAttributeMetadata, type DataverseSchema, type MarketoFieldDescription
} from '../../src/sync/field-mapping-check.ts'
import type { FieldMapping } from '../../src/sync/field-mapping.ts'

/** Given a mapping of a few documented fields, and both schemas as a fresh instance describes them. */
const mapping = (): FieldMapping => ({
  deletedFlag: { marketoField: 'microsoftIsDeleted' },
  fields: [
    { marketoField: 'lastName', dataType: 'string', lead: 'lastname', contact: 'lastname', direction: 'both' },
    { marketoField: 'doNotCall', dataType: 'boolean', lead: 'donotphone', contact: 'donotphone', direction: 'both' },
    { marketoField: 'leadStatus', dataType: 'string', lead: 'statecode', contact: 'statecode', direction: 'both' },
    { marketoField: 'annualRevenue', dataType: 'currency', lead: 'revenue', contact: null, direction: 'both' },
    { marketoField: 'microsoftCreatedDate', dataType: 'datetime', lead: 'createdon', contact: 'createdon', direction: 'toMarketo' },
    { marketoField: 'priority', dataType: 'integer', lead: 'mkt_priority', contact: 'mkt_priority', direction: 'toDynamics' }
  ]
})

const marketo = (): MarketoFieldDescription[] => [
  { name: 'lastName', dataType: 'string', readOnly: false, length: 255 },
  { name: 'doNotCall', dataType: 'boolean', readOnly: false },
  { name: 'leadStatus', dataType: 'string', readOnly: false, length: 255 },
  { name: 'annualRevenue', dataType: 'currency', readOnly: false },
  { name: 'microsoftCreatedDate', dataType: 'datetime', readOnly: false },
  { name: 'priority', dataType: 'integer', readOnly: true },
  { name: 'microsoftIsDeleted', dataType: 'boolean', readOnly: false }
]

const column = (LogicalName: string, AttributeType: string, extra: Partial<DataverseAttributeMetadata> = {}): DataverseAttributeMetadata =>
  ({ LogicalName, AttributeType, IsValidForUpdate: true, IsValidForCreate: true, ...extra })

const common = (): DataverseAttributeMetadata[] => [
  column('lastname', 'String', { MaxLength: 50 }),
  column('donotphone', 'Boolean'),
  column('statecode', 'State'),
  column('createdon', 'DateTime', { IsValidForUpdate: false, IsValidForCreate: false }),
  column('mkt_priority', 'Integer')
]
const dataverse = (): { lead: DataverseAttributeMetadata[], contact: DataverseAttributeMetadata[] } => ({
  lead: [...common(), column('revenue', 'Money')],
  contact: common()
})

t.test('a mapping that matches both schemas has no problem', async (t) => {
  const { problems } = checkFieldMapping(mapping(), marketo(), dataverse())
  t.same(problems, [])
  t.same(assertFieldMappingMatchesSchemas(mapping(), marketo(), dataverse()).map((w) => w.column), ['lastname', 'lastname'])
})

t.test('a field Marketo does not have is named', async (t) => {
  const fields = marketo().filter((field) => field.name !== 'doNotCall')
  t.same(checkFieldMapping(mapping(), fields, dataverse()).problems, [
    { kind: 'missing-in-marketo', marketoField: 'doNotCall', message: 'Marketo has no person field "doNotCall" (not in its describe)' }
  ])
})

t.test('a column one Dataverse table lacks is named with its table', async (t) => {
  const schema = dataverse()
  schema.contact = schema.contact.filter((attribute) => attribute.LogicalName !== 'donotphone')
  t.same(checkFieldMapping(mapping(), marketo(), schema).problems, [
    { kind: 'missing-in-dataverse', marketoField: 'doNotCall', table: 'contact', column: 'donotphone', message: 'Dataverse contact has no column "donotphone" (mapped from Marketo field "doNotCall")' }
  ])
})

t.test('a Dataverse column of a type the Marketo field cannot carry is a type mismatch', async (t) => {
  const schema = dataverse()
  schema.lead = schema.lead.map((attribute) => attribute.LogicalName === 'revenue' ? column('revenue', 'String', { MaxLength: 100 }) : attribute)
  t.same(checkFieldMapping(mapping(), marketo(), schema).problems, [
    { kind: 'type-mismatch', marketoField: 'annualRevenue', table: 'lead', column: 'revenue', message: 'Marketo field "annualRevenue" (currency) cannot carry Dataverse lead.revenue (String)' }
  ])
})

t.test('a Marketo field whose described type differs from the mapping is a type mismatch, and its real type is checked against Dataverse', async (t) => {
  const fields = marketo().map((field) => field.name === 'doNotCall' ? { ...field, dataType: 'string' } : field)
  const { problems } = checkFieldMapping(mapping(), fields, dataverse())
  t.same(problems.map((problem) => [problem.kind, problem.marketoField, problem.table]), [
    ['type-mismatch', 'doNotCall', undefined],
    ['type-mismatch', 'doNotCall', 'lead'],
    ['type-mismatch', 'doNotCall', 'contact']
  ])
  t.equal(problems[0]!.message, 'Marketo field "doNotCall" is mapped as boolean but Marketo describes it as string')
})

t.test('writing a Dataverse column that is not valid for update is a read-only target', async (t) => {
  const m = mapping()
  m.fields[4] = { ...m.fields[4]!, direction: 'both' }
  const { problems } = checkFieldMapping(m, marketo(), dataverse())
  t.same(problems.map((problem) => [problem.kind, problem.marketoField, problem.table, problem.column]), [
    ['read-only-target', 'microsoftCreatedDate', 'lead', 'createdon'],
    ['read-only-target', 'microsoftCreatedDate', 'contact', 'createdon']
  ])
  t.match(problems[0]!.message, /^Dataverse lead\.createdon is not valid for update, but direction "both" writes it/)
})

t.test('writing a Marketo field that is read-only in its REST API is a read-only target', async (t) => {
  const m = mapping()
  m.fields[5] = { ...m.fields[5]!, direction: 'both' }
  t.same(checkFieldMapping(m, marketo(), dataverse()).problems, [
    { kind: 'read-only-target', marketoField: 'priority', message: 'Marketo field "priority" is read-only in Marketo\'s REST API, but direction "both" writes it (use "toDynamics")' }
  ])
})

t.test('the "Microsoft is Deleted" flag must exist in Marketo, be a boolean and be writable', async (t) => {
  const without = marketo().filter((field) => field.name !== 'microsoftIsDeleted')
  t.same(checkFieldMapping(mapping(), without, dataverse()).problems.map((p) => [p.kind, p.marketoField]), [['missing-in-marketo', 'microsoftIsDeleted']])
  const wrong = marketo().map((field) => field.name === 'microsoftIsDeleted' ? { ...field, dataType: 'string', readOnly: true } : field)
  t.same(checkFieldMapping(mapping(), wrong, dataverse()).problems.map((p) => [p.kind, p.marketoField]), [
    ['type-mismatch', 'microsoftIsDeleted'],
    ['read-only-target', 'microsoftIsDeleted']
  ])
})

t.test('every problem is reported at once, not the first only', async (t) => {
  const schema: DataverseSchema = { lead: [], contact: [] }
  const { problems } = checkFieldMapping(mapping(), [], schema)
  t.equal(problems.filter((p) => p.kind === 'missing-in-marketo').length, 7)
  t.equal(problems.filter((p) => p.kind === 'missing-in-dataverse').length, 11)
  t.throws(() => assertFieldMappingMatchesSchemas(mapping(), [], schema), { code: 'FIELD_MAPPING_MISMATCH', name: 'FieldMappingMismatchError', message: /Dataverse contact has no column "mkt_priority"/ })
})

t.test('a Marketo text longer than the Dataverse column is a warning, not a problem', async (t) => {
  const { problems, warnings } = checkFieldMapping(mapping(), marketo(), dataverse())
  t.same(problems, [])
  t.same(warnings[0], {
    kind: 'longer-in-marketo', marketoField: 'lastName', table: 'lead', column: 'lastname',
    message: 'Marketo field "lastName" holds up to 255 characters, Dataverse lead.lastname 50: longer values will be refused by Dynamics'
  })
})

t.test('the compatible type pairs', async (t) => {
  const pairs: Array<[string, string, boolean]> = [
    ['string', 'String', true], ['email', 'String', true], ['phone', 'String', true], ['text', 'Memo', true], ['url', 'String', true],
    ['string', 'Picklist', true], ['string', 'State', true], ['string', 'Status', true], ['email', 'Picklist', false],
    ['integer', 'Integer', true], ['integer', 'BigInt', true], ['score', 'Integer', true], ['integer', 'Decimal', false],
    ['boolean', 'Boolean', true], ['boolean', 'String', false],
    ['date', 'DateTime', true], ['datetime', 'DateTime', true], ['datetime', 'String', false],
    ['float', 'Double', true], ['currency', 'Money', true], ['float', 'Decimal', true], ['currency', 'Integer', false],
    ['string', 'Lookup', false], ['reference', 'String', false]
  ]
  for (const [marketoType, attributeType, expected] of pairs) {
    t.equal(areCompatibleTypes(marketoType, attributeType), expected, `${marketoType} ↔ ${attributeType}`)
  }
})
