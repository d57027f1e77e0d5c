import t, { type Test } from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FieldMappingError, parseFieldMapping, writesToDynamics, type FieldMapping } from '../../src/sync/field-mapping.ts'
import { DEFAULT_FIELD_MAPPING_FILE, readFieldMappingFile } from '../../src/sync/field-mapping-file.ts'
import { PERSON_FIELD_MAPPINGS } from '../../src/sync/person-field-mapping.ts'
import { loadConfig } from '../../src/config.ts'
import { REQUIRED_ENVIRONMENT } from '../helpers/valid-environment.ts'

const minimal = (): FieldMapping => ({
  deletedFlag: { marketoField: 'microsoftIsDeleted' },
  fields: [
    { marketoField: 'email', dataType: 'email', lead: 'emailaddress1', contact: 'emailaddress1', direction: 'both' },
    { marketoField: 'company', dataType: 'string', lead: 'companyname', contact: null, direction: 'both' }
  ]
})

function problemsOf (t: Test, text: string): readonly string[] {
  try {
    parseFieldMapping(text, 'mapping.json')
  } catch (error) {
    t.type(error, FieldMappingError)
    t.equal((error as FieldMappingError).code, 'FIELD_MAPPING_INVALID')
    t.match((error as Error).message, /^field mapping mapping\.json is invalid:/)
    return (error as FieldMappingError).problems
  }
  t.fail('the mapping was accepted')
  return []
}

t.test('the shipped default mapping loads: Marketo\'s documented lead and contact fields, and the deleted flag', async (t) => {
  const mapping = readFieldMappingFile(DEFAULT_FIELD_MAPPING_FILE)
  t.equal(mapping.deletedFlag.marketoField, 'microsoftIsDeleted')
  const byField = new Map(mapping.fields.map((entry) => [entry.marketoField, entry]))
  // A few rows of §11 [S7], one of each kind: both tables, lead only, contact only, one-way.
  t.match(byField.get('title'), { lead: 'jobtitle', contact: 'jobtitle', direction: 'both', dataType: 'string' })
  t.match(byField.get('annualRevenue'), { lead: 'revenue', contact: null, dataType: 'currency' })
  t.match(byField.get('leadScore'), { lead: null, contact: 'mkt_leadscore', dataType: 'integer' })
  t.match(byField.get('microsoftCreatedDate'), { lead: 'createdon', contact: 'createdon', direction: 'toMarketo' })
  t.match(byField.get('msiLastInterestingMomentDate'), { lead: 'mkt_lastinterestingmomentdate', direction: 'toDynamics' })
  t.match(byField.get('doNotCall'), { lead: 'donotphone', contact: 'donotphone', dataType: 'boolean' })
})

t.test('the default mapping agrees with the flow step\'s fields (person-field-mapping.ts)', async (t) => {
  const mapping = readFieldMappingFile(DEFAULT_FIELD_MAPPING_FILE)
  const byField = new Map(mapping.fields.map((entry) => [entry.marketoField, entry]))
  const text = ['string', 'text', 'email', 'phone', 'url']
  for (const flowStepField of PERSON_FIELD_MAPPINGS) {
    const entry = byField.get(flowStepField.marketoField)
    t.ok(entry, `${flowStepField.marketoField} is in the default mapping`)
    if (entry === undefined) continue
    t.equal(entry.lead, flowStepField.lead, `${flowStepField.marketoField}: same lead column`)
    t.equal(entry.contact, flowStepField.contact, `${flowStepField.marketoField}: same contact column`)
    t.ok(writesToDynamics(entry.direction), `${flowStepField.marketoField}: written to Dynamics, as the flow step does`)
    t.ok(text.includes(entry.dataType), `${flowStepField.marketoField}: text, as the flow step sends it`)
    if (flowStepField.dataType === 'email') t.equal(entry.dataType, 'email')
  }
})

t.test('a valid mapping parses to the same data', async (t) => {
  t.same(parseFieldMapping(JSON.stringify(minimal()), 'mapping.json'), minimal())
})

t.test('a file that is not JSON is refused, naming the file', async (t) => {
  const problems = problemsOf(t, '{ "fields": [ ')
  t.match(problems[0], /^not JSON: /)
})

t.test('a wrong value names the entry by its Marketo field and the property', async (t) => {
  const mapping = minimal() as unknown as { fields: Array<Record<string, unknown>> }
  mapping.fields[1]!.direction = 'sideways'
  mapping.fields[0]!.dataType = 'picklist'
  const problems = problemsOf(t, JSON.stringify(mapping))
  t.ok(problems.includes('fields[1] (marketoField "company").direction: must be one of both, toMarketo, toDynamics'), problems.join('\n'))
  t.ok(problems.some((line) => line.startsWith('fields[0] (marketoField "email").dataType: must be one of string, text,')), problems.join('\n'))
})

t.test('an upper-case Dataverse column, a missing property and an unknown one are each named', async (t) => {
  const mapping = minimal() as unknown as { fields: Array<Record<string, unknown>> }
  mapping.fields[0]!.lead = 'EmailAddress1'
  delete mapping.fields[1]!.contact
  mapping.fields[1]!.colour = 'blue'
  const problems = problemsOf(t, JSON.stringify(mapping))
  t.ok(problems.includes('fields[0] (marketoField "email").lead: must be a lower-case Dataverse logical name or null'), problems.join('\n'))
  t.ok(problems.some((line) => line.startsWith('fields[1] (marketoField "company")') && line.includes('contact')), problems.join('\n'))
  t.ok(problems.includes('fields[1] (marketoField "company"): has unknown properties ["colour"]'), problems.join('\n'))
})

t.test('a mapping without the deleted flag is refused', async (t) => {
  const { fields } = minimal()
  const problems = problemsOf(t, JSON.stringify({ fields }))
  t.ok(problems.some((line) => line.includes('deletedFlag')), problems.join('\n'))
})

t.test('a Marketo field mapped twice, or to no column, is refused', async (t) => {
  const mapping = minimal()
  mapping.fields.push({ marketoField: 'email', dataType: 'email', lead: null, contact: null, direction: 'both' })
  const problems = problemsOf(t, JSON.stringify(mapping))
  t.same(problems, ['Marketo field "email" is mapped more than once', 'Marketo field "email" maps to no lead or contact column'])
})

t.test('two Marketo fields on one Dataverse column are refused, per table', async (t) => {
  const mapping = minimal()
  mapping.fields.push({ marketoField: 'subject', dataType: 'string', lead: null, contact: 'emailaddress1', direction: 'both' })
  t.same(problemsOf(t, JSON.stringify(mapping)), ['contact column "emailaddress1" is mapped from both "email" and "subject"'])
})

t.test('the deleted flag may not also be a synced field', async (t) => {
  const mapping = minimal()
  mapping.deletedFlag = { marketoField: 'company' }
  t.same(problemsOf(t, JSON.stringify(mapping)), ['Marketo field "company" is the deleted flag and may not also be a mapped field'])
})

t.test('SYNC_FIELD_MAPPING_FILE pointing at a missing or broken file is named with its path', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'field-mapping-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const missing = join(dir, 'absent.json')
  t.throws(() => readFieldMappingFile(missing), { code: 'FIELD_MAPPING_INVALID', message: `field mapping ${missing} is invalid:\n  - cannot be read: ENOENT` })
  const broken = join(dir, 'broken.json')
  writeFileSync(broken, JSON.stringify({ deletedFlag: { marketoField: 'x' }, fields: [] }))
  t.throws(() => readFieldMappingFile(broken), { code: 'FIELD_MAPPING_INVALID', message: new RegExp(`^field mapping ${broken} is invalid:\\n  - fields: `) })
})

t.test('config: the shipped mapping by default, SYNC_FIELD_MAPPING_FILE resolved to an absolute path', async (t) => {
  const environment = { ...REQUIRED_ENVIRONMENT }
  t.equal(loadConfig(environment).sync.fieldMappingFile, DEFAULT_FIELD_MAPPING_FILE)
  t.equal(loadConfig({ ...environment, SYNC_FIELD_MAPPING_FILE: 'custom/mapping.json' }).sync.fieldMappingFile, join(process.cwd(), 'custom/mapping.json'))
})
