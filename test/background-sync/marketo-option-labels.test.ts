import t from 'tap'
import { decidePersonChanges, dynamicsColumnsByField } from '../../src/background-sync/marketo-change-pass.ts'
import type { PersonChanges } from '../../src/marketo/lead-change-feed.ts'
import { fieldFingerprinter } from '../../src/sync/field-fingerprint.ts'
import type { FieldMapping } from '../../src/sync/field-mapping.ts'
import { labelOf, optionValueOf, UNKNOWN_OPTION_LABEL, type OptionSets } from '../../src/sync/option-labels.ts'

/** Marketo → Dynamics: a Marketo label is written as its option's value; a label with no option refuses the record. */

const fingerprint = fieldFingerprinter(new Uint8Array(32).fill(7), 'lead:00000000-0000-0000-0000-000000000001')
const mapping: FieldMapping = {
  deletedFlag: { marketoField: 'microsoftIsDeleted' },
  fields: [
    { marketoField: 'leadSource', dataType: 'string', lead: 'leadsourcecode', contact: null, direction: 'both' },
    { marketoField: 'title', dataType: 'string', lead: 'jobtitle', contact: 'jobtitle', direction: 'both' }
  ]
}
const columns = dynamicsColumnsByField(mapping, 'lead')
const optionSets: OptionSets = { leadsourcecode: [{ value: 7, label: 'Trade Show' }, { value: 8, label: 'Web' }] }

function person (fields: Record<string, string | null>): PersonChanges {
  return {
    personId: 1001,
    isNew: false,
    createdThroughApi: false,
    fields: Object.fromEntries(Object.entries(fields).map(([name, value]) => [name, { value, changedAt: '2026-01-01T00:00:00Z', madeThroughApi: false }]))
  }
}

t.test('label ↔ value', async (t) => {
  t.equal(labelOf(optionSets.leadsourcecode!, 8), 'Web')
  t.equal(labelOf(optionSets.leadsourcecode!, 99), undefined)
  t.equal(optionValueOf(optionSets.leadsourcecode!, 'Trade Show'), 7)
  t.equal(optionValueOf(optionSets.leadsourcecode!, ' trade show '), 7, 'case and spaces as Marketo users type them')
  t.equal(optionValueOf(optionSets.leadsourcecode!, 'Webinar'), undefined)
  t.equal(optionValueOf([{ value: 1, label: 'a' }, { value: 2, label: 'A' }], ' a'), undefined, 'an ambiguous loose match is no match')
})

t.test('a label edited in Marketo is written as its option value; the record\'s value is compared as its label', async (t) => {
  const state = { leadSource: fingerprint('leadSource', 'Web') }
  const decision = decidePersonChanges({ table: 'lead', person: person({ leadSource: 'Trade Show' }), columns, lastSynced: state, record: { leadsourcecode: 8 }, fingerprint, optionSets })
  t.same(decision.columns, { leadsourcecode: 7 })
  t.equal(decision.state.leadSource, fingerprint('leadSource', 'Trade Show'), 'the state is taken over the label')
  t.equal(decision.refused, undefined)

  const same = decidePersonChanges({ table: 'lead', person: person({ leadSource: 'Web' }), columns, lastSynced: state, record: { leadsourcecode: 8 }, fingerprint, optionSets })
  t.same(same.columns, {}, 'the label of the value Dynamics holds: nothing to write')
})

t.test('a label with no option refuses that field only: the person\'s other changes are written, its state kept', async (t) => {
  const state = { leadSource: fingerprint('leadSource', 'Web'), title: fingerprint('title', 'CEO') }
  const decision = decidePersonChanges({ table: 'lead', person: person({ leadSource: 'Webinar', title: 'CTO' }), columns, lastSynced: state, record: { leadsourcecode: 8, jobtitle: 'CEO' }, fingerprint, optionSets })
  t.same(decision.refused, [{ fields: ['leadSource'], columns: ['leadsourcecode'], code: UNKNOWN_OPTION_LABEL }])
  t.same(decision.columns, { jobtitle: 'CTO' }, 'the title edited beside it is written')
  t.equal(decision.state.leadSource, state.leadSource, 'the refused field keeps its state, so it is still a change')
  t.equal(decision.state.title, fingerprint('title', 'CTO'), 'the written field moves on')
})

t.test('a label emptied in Marketo clears the option', async (t) => {
  const state = { leadSource: fingerprint('leadSource', 'Web') }
  const decision = decidePersonChanges({ table: 'lead', person: person({ leadSource: '' }), columns, lastSynced: state, record: { leadsourcecode: 8 }, fingerprint, optionSets })
  t.same(decision.columns, { leadsourcecode: null })
})
