import t from 'tap'
import { decidePersonChanges, dynamicsColumnsByField, isOwnEcho } from '../../src/background-sync/marketo-change-pass.ts'
import type { PersonChanges } from '../../src/marketo/lead-change-feed.ts'
import { fieldFingerprinter } from '../../src/sync/field-fingerprint.ts'
import type { FieldMapping } from '../../src/sync/field-mapping.ts'
import type { OptionSets } from '../../src/sync/option-labels.ts'
import { STATE_STATUS_MISMATCH, type StateStatusOptions } from '../../src/sync/state-status.ts'

/**
 * Marketo → Dynamics, decided per person: Person Status and Status Reason (the default mapping's
 * `leadStatus` → statecode, `microsoftStatusReason` → statuscode) written as a pair Dataverse
 * accepts; and which persons' changes are the sync's own writes coming back.
 */

const fingerprint = fieldFingerprinter(new Uint8Array(32).fill(7), 'lead:00000000-0000-0000-0000-000000000001')
const mapping: FieldMapping = {
  deletedFlag: { marketoField: 'microsoftIsDeleted' },
  fields: [
    { marketoField: 'leadStatus', dataType: 'string', lead: 'statecode', contact: 'statecode', direction: 'both' },
    { marketoField: 'microsoftStatusReason', dataType: 'string', lead: 'statuscode', contact: 'statuscode', direction: 'both' },
    { marketoField: 'title', dataType: 'string', lead: 'jobtitle', contact: 'jobtitle', direction: 'both' }
  ]
}
const columns = dynamicsColumnsByField(mapping, 'lead')
const optionSets: OptionSets = {
  statecode: [{ value: 0, label: 'Open' }, { value: 1, label: 'Qualified' }, { value: 2, label: 'Disqualified' }],
  statuscode: [{ value: 1, label: 'New' }, { value: 2, label: 'Contacted' }, { value: 3, label: 'Qualified' }, { value: 4, label: 'Lost' }, { value: 5, label: 'Cannot Contact' }]
}
const stateStatus: StateStatusOptions = {
  states: [{ value: 0, defaultStatus: 1 }, { value: 1, defaultStatus: 3 }, { value: 2, defaultStatus: 4 }],
  statuses: [{ value: 1, state: 0 }, { value: 2, state: 0 }, { value: 3, state: 1 }, { value: 4, state: 2 }, { value: 5, state: 2 }]
}
const openNew = { statecode: 0, statuscode: 1, jobtitle: 'CTO' }
const synced = { leadStatus: fingerprint('leadStatus', 'Open'), microsoftStatusReason: fingerprint('microsoftStatusReason', 'New'), title: fingerprint('title', 'CTO') }

function person (fields: Record<string, string | null>, madeThroughApi = false): PersonChanges {
  return {
    personId: 1001,
    isNew: false,
    createdThroughApi: false,
    fields: Object.fromEntries(Object.entries(fields).map(([name, value]) => [name, { value, changedAt: '2026-01-01T00:00:00Z', madeThroughApi }]))
  }
}

const decide = (fields: Record<string, string | null>, record: Record<string, unknown> = openNew) =>
  decidePersonChanges({ table: 'lead', person: person(fields), columns, lastSynced: synced, record, fingerprint, optionSets, stateStatus })

t.test('a marketer sets Person Status to Qualified: the lead gets state Qualified with its default status', async (t) => {
  const decision = decide({ leadStatus: 'Qualified' })
  t.same(decision.columns, { statecode: 1, statuscode: 3 })
  t.equal(decision.refused, undefined)
  t.equal(decision.state.leadStatus, fingerprint('leadStatus', 'Qualified'))
  t.equal(decision.state.microsoftStatusReason, synced.microsoftStatusReason, 'the added status is not saved: Dynamics → Marketo brings Status Reason in step')
})

t.test('a marketer sets Person Status to Disqualified: state Disqualified, status Lost', async (t) => {
  t.same(decide({ leadStatus: 'Disqualified' }).columns, { statecode: 2, statuscode: 4 })
})

t.test('a Status Reason alone brings its state along', async (t) => {
  t.same(decide({ microsoftStatusReason: 'Cannot Contact' }).columns, { statuscode: 5, statecode: 2 })
  t.same(decide({ microsoftStatusReason: 'Contacted' }).columns, { statuscode: 2 }, 'within the record\'s state, alone')
})

t.test('both set and matching: written as they are', async (t) => {
  t.same(decide({ leadStatus: 'Disqualified', microsoftStatusReason: 'Cannot Contact' }).columns, { statecode: 2, statuscode: 5 })
})

t.test('an impossible pair refuses those two fields: the person\'s other changes are written, the pair\'s state kept', async (t) => {
  const decision = decide({ leadStatus: 'Qualified', microsoftStatusReason: 'Lost', title: 'CEO' })
  t.same(decision.refused, [{ fields: ['leadStatus', 'microsoftStatusReason'], columns: ['statecode', 'statuscode'], code: STATE_STATUS_MISMATCH }])
  t.same(decision.columns, { jobtitle: 'CEO' }, 'the title changed beside them is written')
  t.equal(decision.state.leadStatus, synced.leadStatus)
  t.equal(decision.state.microsoftStatusReason, synced.microsoftStatusReason)
})

t.test('without the state/status metadata each column is written as the merge decided', async (t) => {
  const decision = decidePersonChanges({ table: 'lead', person: person({ leadStatus: 'Qualified' }), columns, lastSynced: synced, record: openNew, fingerprint, optionSets })
  t.same(decision.columns, { statecode: 1 })
})

t.test('our own write coming back is an echo: through the API, at the last-synced value', async (t) => {
  const fields = ['title', 'leadStatus']
  t.ok(isOwnEcho(person({ title: 'CTO', leadStatus: 'Open' }, true), fields, synced, fingerprint))
  t.notOk(isOwnEcho(person({ title: 'CTO', leadStatus: 'Open' }, false), fields, synced, fingerprint), 'a marketer\'s edit back to the same value is not ours')
  t.notOk(isOwnEcho(person({ title: 'VP', leadStatus: 'Open' }, true), fields, synced, fingerprint), 'another integration\'s API write of a new value')
  t.notOk(isOwnEcho(person({ title: 'CTO' }, true), ['title'], {}, fingerprint), 'a field never synced has no state to echo')
})
