import t from 'tap'
import { dataverseValue, decidePersonChanges, marketoFeedFields, dynamicsColumnsByField } from '../../src/background-sync/marketo-change-pass.ts'
import type { PersonChanges } from '../../src/marketo/lead-change-feed.ts'
import { fieldFingerprinter } from '../../src/sync/field-fingerprint.ts'
import type { FieldMapping } from '../../src/sync/field-mapping.ts'

/** The pure decisions of a Marketo change pass: what a person's page of changes writes to its record. */

const fingerprint = fieldFingerprinter(new Uint8Array(32).fill(7), 'lead:00000000-0000-0000-0000-000000000001')
const mapping: FieldMapping = {
  deletedFlag: { marketoField: 'microsoftIsDeleted' },
  fields: [
    { marketoField: 'title', dataType: 'string', lead: 'jobtitle', contact: 'jobtitle', direction: 'both' },
    { marketoField: 'numberOfEmployees', dataType: 'integer', lead: 'numberofemployees', contact: null, direction: 'both' },
    { marketoField: 'createdAt', dataType: 'datetime', lead: 'createdon', contact: 'createdon', direction: 'toMarketo' }
  ]
}
const columns = dynamicsColumnsByField(mapping, 'lead')

function person (fields: Record<string, string | null>, madeThroughApi = false): PersonChanges {
  return {
    personId: 1001,
    isNew: false,
    createdThroughApi: false,
    fields: Object.fromEntries(Object.entries(fields).map(([name, value]) => [name, { value, changedAt: '2026-01-01T00:00:00Z', madeThroughApi }]))
  }
}

t.test('the feed is asked for the fields that reach Dynamics only', async (t) => {
  t.same(marketoFeedFields(mapping).sort(), ['numberOfEmployees', 'title'])
})

t.test('a Marketo edit writes its column and moves the state', async (t) => {
  const decision = decidePersonChanges({ table: 'lead', person: person({ title: 'CTO' }), columns, lastSynced: { title: fingerprint('title', 'CEO') }, record: { jobtitle: 'CEO' }, fingerprint })
  t.same(decision.columns, { jobtitle: 'CTO' })
  t.same(decision.state, { title: fingerprint('title', 'CTO') })
})

t.test('an echo (a value equal to the last-synced state) writes nothing', async (t) => {
  const state = { title: fingerprint('title', 'CTO') }
  const decision = decidePersonChanges({ table: 'lead', person: person({ title: 'CTO' }, true), columns, lastSynced: state, record: { jobtitle: 'CTO' }, fingerprint })
  t.same(decision.columns, {})
  t.same(decision.state, state)
})

t.test('a contact collision: nothing written to Dynamics, the state left for the Dynamics → Marketo direction', async (t) => {
  const state = { title: fingerprint('title', 'Chemist') }
  const decision = decidePersonChanges({ table: 'contact', person: person({ title: 'Biologist' }), columns: dynamicsColumnsByField(mapping, 'contact'), lastSynced: state, record: { jobtitle: 'Crystallographer' }, fingerprint })
  t.same(decision.columns, {})
  t.same(decision.state, state)
})

t.test('fields not in the page keep their state; a numeric field is written as a number', async (t) => {
  const other = fingerprint('title', 'CEO')
  const decision = decidePersonChanges({ table: 'lead', person: person({ numberOfEmployees: '250' }), columns, lastSynced: { title: other }, record: { jobtitle: 'CEO', numberofemployees: 100 }, fingerprint })
  t.same(decision.columns, { numberofemployees: 250 })
  t.equal(decision.state.title, other)
  t.equal(decision.state.numberOfEmployees, fingerprint('numberOfEmployees', 250))
})

t.test('dataverseValue converts text by the mapped data type and leaves non-numbers as they are', async (t) => {
  t.equal(dataverseValue('42', 'integer'), 42)
  t.equal(dataverseValue('forty', 'integer'), 'forty')
  t.equal(dataverseValue('true', 'boolean'), true)
  t.equal(dataverseValue('042', 'string'), '042')
  t.equal(dataverseValue(undefined, 'string'), null)
})
