import type { DataverseClient } from '../dynamics/dataverse-client.ts'
import { changeReadColumns, selectedColumns, splitChanges, TABLES, type ChangedRow } from '../dynamics/table-changes.ts'
import type { SyncTable } from '../sync/field-mapping.ts'
import { deliverDynamicsPage, type DeliveryOutcome, type DynamicsToMarketoDeliveryDeps } from './dynamics-to-marketo-delivery.ts'
import { ParkedChangeError, type DynamicsParkedChange, type ParkedChangeFilter, type ParkedChangeStore } from './parked-changes.ts'

/**
 * Retrying parked Dynamics → Marketo records (issue 12 §9: "a parked change can be retried once the
 * data is fixed"), as plain functions the admin API will call, beside parked-change-retry.ts for the
 * other direction. A retry does not replay what was refused: it reads the record from Dataverse as
 * it is now, with the columns a change read selects (table-changes.ts `changeReadColumns`), and
 * delivers it as a one-row page through the pass's own `deliverDynamicsPage`, so a fix made in
 * Dynamics (an email corrected or added) or in Marketo (the duplicate persons merged) since is what
 * decides, by the same merge, duplicate rule and sync filter.
 *
 * - Delivered (written, created or linked), or nothing to write (the values converged): the
 *   delivery itself clears the entry.
 * - Refused or reported again: the delivery updates the entry (attempts + 1, the newest code).
 * - The record deleted in Dynamics, or its sync filter now No: nothing is to be delivered any
 *   more, so the entry is discarded.
 *
 * Not under the table's feed lease: a retry may run beside a pass. Both deliver the record's
 * current values and save only the fields they decided (the README's pair-state limit), and a
 * record both create is kept from a second person by Marketo's createOnly (1005), parked then.
 */

export type DynamicsParkedChangeRetryResult =
  /** Written to the person, created, or linked to the one person with its email. */
  | 'delivered'
  /** Nothing left to write: both sides already agree. */
  | 'unchanged'
  /** Marketo refused it again, or it is still without an email or ambiguous: its entry is updated. */
  | 'refused'
  /** The record's sync filter `new_synctomkto` is now No (issue 12 §8). */
  | 'filtered'
  /** Dataverse no longer has the record. */
  | 'record-missing'

export interface DynamicsParkedChangeRetryDeps extends Omit<DynamicsToMarketoDeliveryDeps, 'table' | 'parked'> {
  readonly dataverse: Pick<DataverseClient, 'retrieveQueryPage'>
  readonly parked: Pick<ParkedChangeStore, 'get' | 'list' | 'park' | 'settle' | 'discard' | 'discardIfUnchanged'>
  /** The tables that have the sync filter column, as start-up found them (a read selecting a missing column is refused). */
  readonly syncFilterTables: ReadonlySet<SyncTable>
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

/** Pure: what a one-row delivery did with the retried record. */
export function retryResultOf (outcome: DeliveryOutcome): Exclude<DynamicsParkedChangeRetryResult, 'record-missing'> {
  if (outcome.refused + outcome.reported > 0) return 'refused'
  if (outcome.filtered > 0) return 'filtered'
  if (outcome.created + outcome.updated + outcome.linked + outcome.converted > 0) return 'delivered'
  return 'unchanged'
}

/** Retries one parked Dynamics → Marketo record; throws PARKED_CHANGE_NOT_FOUND when there is no such entry. */
export async function retryDynamicsParkedChange (deps: DynamicsParkedChangeRetryDeps, id: string): Promise<DynamicsParkedChangeRetryResult> {
  const entry = await deps.parked.get(id)
  if (entry === undefined) throw new ParkedChangeError('PARKED_CHANGE_NOT_FOUND', 'no parked change with this id')
  if (entry.direction !== 'dynamics-to-marketo') throw new ParkedChangeError('PARKED_CHANGE_OTHER_DIRECTION', 'a Marketo → Dynamics change: retryParkedChange retries it')
  return await retryEntry(deps, entry)
}

/** Retries every Dynamics → Marketo entry the filter selects (all by default, at most the store's list limit), one at a time; results by entry id. */
export async function retryDynamicsParkedChanges (deps: DynamicsParkedChangeRetryDeps, filter: ParkedChangeFilter = {}): Promise<Map<string, DynamicsParkedChangeRetryResult>> {
  const results = new Map<string, DynamicsParkedChangeRetryResult>()
  if (filter.direction !== undefined && filter.direction !== 'dynamics-to-marketo') return results
  for (const entry of await deps.parked.list({ ...filter, direction: 'dynamics-to-marketo' })) results.set(entry.id, await retryEntry(deps, entry))
  return results
}

async function retryEntry (deps: DynamicsParkedChangeRetryDeps, entry: DynamicsParkedChange): Promise<DynamicsParkedChangeRetryResult> {
  const row = await readRecord(deps, entry.table, entry.recordId)
  let result: DynamicsParkedChangeRetryResult
  if (row === undefined) result = 'record-missing'
  else {
    const outcome = await deliverDynamicsPage(
      { kind: 'page', upserted: [row], deletedIds: [], cursor: '', caughtUp: true },
      { ...deps, table: entry.table }
    )
    result = retryResultOf(outcome)
  }
  // Delivered and unchanged records were cleared by the delivery; a missing or filtered one has nothing left to deliver.
  // Unless a pass parked a new refusal of the record meanwhile, which stays.
  if (result !== 'refused') await deps.parked.discardIfUnchanged(entry)
  deps.logger.info({ parkedChangeId: entry.id, result }, 'parked change retried')
  return result
}

/** The record as a change read would answer it (same columns, option labels), or undefined when Dataverse has none. */
async function readRecord (deps: DynamicsParkedChangeRetryDeps, table: SyncTable, recordId: string): Promise<ChangedRow | undefined> {
  // Ids come from the store, lower-case GUIDs; checked again because they go into a $filter.
  if (!GUID.test(recordId)) throw new ParkedChangeError('PARKED_CHANGE_INVALID_ID', 'not a parked change id')
  const { entitySet, primaryKey } = TABLES[table]
  const select = selectedColumns(table, changeReadColumns(deps.mapping, table, { syncFilter: deps.syncFilterTables.has(table) }))
  // GUIDs unquoted in $filter (dataverse-web-api-and-msal.md §1.10).
  const page = await deps.dataverse.retrieveQueryPage<Record<string, unknown>>(entitySet, { select, filter: `${primaryKey} eq ${recordId}` }, { formattedValues: true })
  return splitChanges(page.value, primaryKey, select).upserted[0]
}
