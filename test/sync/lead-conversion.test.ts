import t from 'tap'
import { originatingLeadOf, unlinkedContactRoute } from '../../src/sync/lead-conversion.ts'
import { syncFilterDecision } from '../../src/sync/sync-filter.ts'

/**
 * marketo-native-dynamics-sync.md §5, the Qualify table, row by row: the contact's own filter first
 * (sync-filter.ts), then its road. A lead that was set to No before it ever synced has no person.
 */
const LEAD = 'a1b2c3d4-0000-0000-0000-000000000001'
const contactRow = (filter: boolean | null) => ({ new_synctomkto: filter, _originatingleadid_value: LEAD.toUpperCase() })

t.test('the originating lead is read from the contact, lower-case; none without the lookup', async (t) => {
  t.equal(originatingLeadOf(contactRow(null)), LEAD)
  t.equal(originatingLeadOf({ _originatingleadid_value: null }), undefined)
  t.equal(originatingLeadOf({}), undefined)
})

t.test('lead False, contact False: nothing is synced', async (t) => {
  t.equal(syncFilterDecision(contactRow(false)), 'skip')
})

t.test('lead True, contact True: the contact is synced, as the lead\'s person', async (t) => {
  t.equal(syncFilterDecision(contactRow(true)), 'sync')
  t.same(unlinkedContactRoute(originatingLeadOf(contactRow(true)), new Map([[LEAD, 7]])), { kind: 'take-over-lead-person', marketoId: 7 })
})

t.test('lead False, contact True: a new contact record is created in Marketo', async (t) => {
  t.equal(syncFilterDecision(contactRow(true)), 'sync')
  t.same(unlinkedContactRoute(originatingLeadOf(contactRow(true)), new Map()), { kind: 'new-record' }, 'the lead never synced: no person to take over')
})

t.test('lead True, contact False: the contact is not synced (the lead keeps its person)', async (t) => {
  t.equal(syncFilterDecision(contactRow(false)), 'skip')
})

t.test('a contact created without a lead takes the new record\'s road', async (t) => {
  t.same(unlinkedContactRoute(undefined, new Map([[LEAD, 7]])), { kind: 'new-record' })
})
