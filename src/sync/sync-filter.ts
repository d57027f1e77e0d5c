/**
 * The native sync's sync filter (marketo-native-dynamics-sync.md §5, issue 12 §8): a custom Two
 * Options (boolean) column named exactly `new_synctomkto` on a Dynamics table decides, record by
 * record, whether the record syncs to Marketo. Pure decisions only; reading the column is
 * table-changes.ts's job, and whether a table has it at all is learnt once at start-up from
 * Dataverse's attribute metadata.
 *
 * Marketo → Dynamics is not filtered: §5's table answers "Sync to Marketo?" only, and Yes → No is
 * described as the Marketo person going stale, not as Dynamics refusing Marketo's edits. Stopping
 * them would also lose them: the lead-change feed moves on, and after No → Yes the Dynamics →
 * Marketo delivery leaves a Marketo-side change to that direction (field-merge.ts), which has
 * already passed it.
 */

/** The column's logical name: "must be exactly new_synctomkto" (§5, [S16]). */
export const SYNC_FILTER_COLUMN = 'new_synctomkto'

export type SyncFilterDecision = 'sync' | 'skip'

/**
 * §5's decision table: the column missing from the row (the table has none, or it was not read),
 * empty (null) or Yes (true) → sync; "The only way to tell Marketo to skip a record is to set the
 * field value explicitly to be No" → only `false` skips.
 */
export function syncFilterDecision (columns: Readonly<Record<string, unknown>>): SyncFilterDecision {
  return Object.hasOwn(columns, SYNC_FILTER_COLUMN) && columns[SYNC_FILTER_COLUMN] === false ? 'skip' : 'sync'
}

/** Whether a table's attribute metadata lists the filter column ("Field doesn't exist" → everything syncs). */
export function hasSyncFilterColumn (attributes: ReadonlyArray<{ readonly LogicalName: string }>): boolean {
  return attributes.some((attribute) => attribute.LogicalName === SYNC_FILTER_COLUMN)
}
