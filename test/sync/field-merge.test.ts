import { test } from 'tap'
import type { RecordType } from '../../src/domain/record-type.ts'
import { fieldFingerprinter, type FieldValues } from '../../src/sync/field-fingerprint.ts'
import { collisionWinner, mergeFieldChanges, type LastSyncedState, type SideSnapshot } from '../../src/sync/field-merge.ts'

/** The field-by-field merge of one linked pair, one rule at a time: plain data in, writes, state and decisions out. */

const fingerprint = fieldFingerprinter(Buffer.alloc(32, 3), '0f8fad5b-d9cb-469f-a165-70867728950e')
const FIELDS = ['firstName', 'lastName', 'title', 'phone']
const synced = { firstName: 'Ann', lastName: 'Lee', title: 'Engineer', phone: '555 0100' }

function stateOf (values: FieldValues): LastSyncedState {
  return Object.fromEntries(Object.entries(values).map(([field, value]) => [field, fingerprint(field, value)]))
}

function merge (recordType: RecordType, marketo: SideSnapshot | FieldValues | undefined, dynamics: SideSnapshot | FieldValues | undefined, lastSynced: LastSyncedState = stateOf(synced)) {
  const side = (s: SideSnapshot | FieldValues | undefined): SideSnapshot | undefined =>
    s === undefined || 'values' in s ? s as SideSnapshot | undefined : { values: s as FieldValues }
  return mergeFieldChanges({ recordType, fields: FIELDS, lastSynced, marketo: side(marketo), dynamics: side(dynamics), fingerprint })
}

test('collisions are won by Marketo for leads and by Dynamics for contacts', async (t) => {
  t.equal(collisionWinner('Lead'), 'marketo')
  t.equal(collisionWinner('Contact'), 'dynamics')
})

test('a Marketo edit reaches the Dynamics lead, and only that field is written', async (t) => {
  const result = merge('Lead', { ...synced, title: 'CTO' }, synced)
  t.same(result.writes, { marketo: {}, dynamics: { title: 'CTO' } })
  t.same(result.decisions, { firstName: 'unchanged', lastName: 'unchanged', title: 'to-dynamics', phone: 'unchanged' })
  t.same(result.lastSynced, stateOf({ ...synced, title: 'CTO' }))
})

test('a Dynamics edit reaches the Marketo person', async (t) => {
  const result = merge('Contact', synced, { ...synced, phone: '555 0199' })
  t.same(result.writes, { marketo: { phone: '555 0199' }, dynamics: {} })
  t.equal(result.decisions.phone, 'to-marketo')
  t.same(result.lastSynced, stateOf({ ...synced, phone: '555 0199' }))
})

test('a lead collision: Marketo wins', async (t) => {
  const result = merge('Lead', { ...synced, title: 'CTO (Marketo)' }, { ...synced, title: 'VP (Dynamics)' })
  t.same(result.writes, { marketo: {}, dynamics: { title: 'CTO (Marketo)' } })
  t.equal(result.decisions.title, 'collision-marketo-won')
  t.equal(result.lastSynced.title, fingerprint('title', 'CTO (Marketo)'))
})

test('a contact collision: Dynamics wins', async (t) => {
  const result = merge('Contact', { ...synced, title: 'CTO (Marketo)' }, { ...synced, title: 'VP (Dynamics)' })
  t.same(result.writes, { marketo: { title: 'VP (Dynamics)' }, dynamics: {} })
  t.equal(result.decisions.title, 'collision-dynamics-won')
  t.equal(result.lastSynced.title, fingerprint('title', 'VP (Dynamics)'))
})

test('edits to different fields both survive', async (t) => {
  for (const recordType of ['Lead', 'Contact'] as const) {
    const result = merge(recordType, { ...synced, title: 'CTO' }, { ...synced, phone: '555 0199' })
    t.same(result.writes, { marketo: { phone: '555 0199' }, dynamics: { title: 'CTO' } }, recordType)
    t.same(result.lastSynced, stateOf({ ...synced, title: 'CTO', phone: '555 0199' }), recordType)
  }
})

test('both sides changed to the same value: nothing is written, the state moves on', async (t) => {
  const result = merge('Contact', { ...synced, title: 'CTO' }, { ...synced, title: ' CTO ' })
  t.same(result.writes, { marketo: {}, dynamics: {} })
  t.equal(result.decisions.title, 'converged')
  t.equal(result.lastSynced.title, fingerprint('title', 'CTO'))
})

test('an echo is silent: our own write read back from Dynamics writes nothing', async (t) => {
  const afterOurWrite = stateOf({ ...synced, title: 'CTO' })
  const result = merge('Lead', { ...synced, title: 'CTO' }, { values: { ...synced, title: 'CTO' }, lastModifiedByService: true }, afterOurWrite)
  t.same(result.writes, { marketo: {}, dynamics: {} })
  t.same(result.decisions, { firstName: 'echo', lastName: 'echo', title: 'echo', phone: 'echo' })
  t.same(result.lastSynced, afterOurWrite)
})

test('a record the service last wrote still flows when its value is not the one we wrote', async (t) => {
  const result = merge('Contact', synced, { values: { ...synced, title: 'Edited by a plug-in' }, lastModifiedByService: true })
  t.same(result.writes, { marketo: { title: 'Edited by a plug-in' }, dynamics: {} })
  t.equal(result.decisions.title, 'to-marketo')
})

test('a round trip\'s own differences are not edits: blanks, nulls, trailing spaces, numbers as text', async (t) => {
  const lastSynced = stateOf({ firstName: 'Ann', lastName: 'Lee', title: null, phone: 5550100 })
  const result = merge('Lead', { firstName: 'Ann ', lastName: 'Lee', phone: '5550100' }, { firstName: 'Ann', lastName: 'Lee', title: '', phone: 5550100 }, lastSynced)
  t.same(result.writes, { marketo: {}, dynamics: {} })
  t.same(Object.values(result.decisions), ['unchanged', 'unchanged', 'unchanged', 'unchanged'])
})

test('a field cleared in Marketo is cleared on the lead (written as null), and edits are written trimmed', async (t) => {
  const result = merge('Lead', { ...synced, phone: '', title: '  CTO  ' }, synced)
  t.same(result.writes.dynamics, { phone: null, title: 'CTO' })
  t.equal(result.lastSynced.phone, fingerprint('phone', null))
})

test('one side not read: a winner\'s edit goes now, a loser\'s waits until the winner\'s side is read', async (t) => {
  const leadFromMarketo = merge('Lead', { ...synced, title: 'CTO' }, undefined)
  t.same(leadFromMarketo.writes, { marketo: {}, dynamics: { title: 'CTO' } }, 'Marketo wins for a lead: no Dynamics edit could beat it')
  t.equal(leadFromMarketo.decisions.title, 'to-dynamics')
  t.equal(leadFromMarketo.lastSynced.title, fingerprint('title', 'CTO'))

  const leadFromDynamics = merge('Lead', undefined, { ...synced, title: 'VP' })
  t.same(leadFromDynamics.writes, { marketo: {}, dynamics: {} }, 'an unseen Marketo edit would win over it')
  t.equal(leadFromDynamics.decisions.title, 'deferred-until-read')
  t.same(leadFromDynamics.lastSynced, stateOf(synced), 'the state waits too')

  const contactFromDynamics = merge('Contact', undefined, { ...synced, title: 'VP' })
  t.same(contactFromDynamics.writes, { marketo: { title: 'VP' }, dynamics: {} })

  const contactFromMarketo = merge('Contact', { ...synced, title: 'CTO' }, undefined)
  t.same(contactFromMarketo.writes, { marketo: {}, dynamics: {} })
  t.equal(contactFromMarketo.decisions.title, 'deferred-until-read')
})

test('neither side read: nothing moves, the state is kept', async (t) => {
  const result = merge('Lead', undefined, undefined)
  t.same(result.writes, { marketo: {}, dynamics: {} })
  t.same(Object.values(result.decisions), ['not-read', 'not-read', 'not-read', 'not-read'])
  t.same(result.lastSynced, stateOf(synced))
})

test('a new link fills the gaps on each side and never blanks a value with the other side\'s nothing', async (t) => {
  const result = merge('Contact',
    { firstName: 'Ann', lastName: 'Lee', title: 'CTO' },
    { firstName: 'Ann', lastName: 'Lee-Smith', phone: '555 0100' },
    {})
  t.same(result.writes, { marketo: { lastName: 'Lee-Smith', phone: '555 0100' }, dynamics: { title: 'CTO' } })
  t.same(result.decisions, { firstName: 'converged', lastName: 'collision-dynamics-won', title: 'to-dynamics', phone: 'to-marketo' })
  t.same(result.lastSynced, stateOf({ firstName: 'Ann', lastName: 'Lee-Smith', title: 'CTO', phone: '555 0100' }))
})

test('a new link with a field empty on both sides records it as synced-empty, so a later edit shows', async (t) => {
  const first = merge('Lead', { firstName: 'Ann' }, { firstName: 'Ann' }, {})
  t.equal(first.lastSynced.title, fingerprint('title', null))
  const later = merge('Lead', { firstName: 'Ann' }, { firstName: 'Ann', title: 'VP' }, first.lastSynced)
  t.same(later.writes.marketo, { title: 'VP' })
})

test('a new link read on one side only records no state for a field it cannot compare', async (t) => {
  const result = merge('Contact', { firstName: 'Ann' }, undefined, {})
  t.same(result.lastSynced, {}, 'Marketo would lose a collision on a contact: its values wait')
  t.same(result.decisions, { firstName: 'deferred-until-read', lastName: 'unchanged', title: 'unchanged', phone: 'unchanged' })
})

test('the state of a field no longer mapped is dropped', async (t) => {
  const result = merge('Lead', synced, synced, { ...stateOf(synced), fax: fingerprint('fax', '555 0101') })
  t.notOk('fax' in result.lastSynced)
  t.same(result.lastSynced, stateOf(synced))
})

test('stopped after writing, before saving the state: the next round writes nothing twice', async (t) => {
  const first = merge('Lead', { ...synced, title: 'CTO' }, synced)
  t.same(first.writes.dynamics, { title: 'CTO' })
  // The write landed in Dynamics, the new state was never saved: the old state is read again.
  const again = merge('Lead', { ...synced, title: 'CTO' }, { values: { ...synced, title: 'CTO' }, lastModifiedByService: true })
  t.same(again.writes, { marketo: {}, dynamics: {} })
  t.equal(again.decisions.title, 'converged')
  t.same(again.lastSynced, first.lastSynced)
})
