import t from 'tap'
import { hasSyncFilterColumn, syncFilterDecision, SYNC_FILTER_COLUMN } from '../../src/sync/sync-filter.ts'

// marketo-native-dynamics-sync.md §5, the decision table, row by row.
t.test('the field does not exist: the record syncs', async (t) => {
  t.equal(syncFilterDecision({ firstname: 'Ada' }), 'sync')
})

t.test('the field is empty: the record syncs', async (t) => {
  t.equal(syncFilterDecision({ [SYNC_FILTER_COLUMN]: null }), 'sync')
})

t.test('the field is Yes: the record syncs', async (t) => {
  t.equal(syncFilterDecision({ [SYNC_FILTER_COLUMN]: true }), 'sync')
})

t.test('the field is No: the record is skipped', async (t) => {
  t.equal(syncFilterDecision({ [SYNC_FILTER_COLUMN]: false }), 'skip')
})

t.test('only an explicit No skips: anything else Dataverse could answer syncs', async (t) => {
  for (const value of [undefined, 0, '', 'false', 'No']) t.equal(syncFilterDecision({ [SYNC_FILTER_COLUMN]: value }), 'sync', String(value))
})

t.test('a table has the filter when its metadata lists the column by its exact name', async (t) => {
  t.ok(hasSyncFilterColumn([{ LogicalName: 'firstname' }, { LogicalName: 'new_synctomkto' }]))
  t.notOk(hasSyncFilterColumn([{ LogicalName: 'firstname' }, { LogicalName: 'cr5a1_synctomkto' }]), 'another publisher prefix is not the filter')
})
