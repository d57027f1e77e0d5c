import type { FieldMapping, SyncTable } from '../sync/field-mapping.ts'
import type { DataverseClient } from './dataverse-client.ts'
import { DataverseError } from './dataverse-errors.ts'
import { formattedValuesOf } from '../sync/option-labels.ts'
import { SYNC_FILTER_COLUMN } from '../sync/sync-filter.ts'
import { ORIGINATING_LEAD_COLUMN } from '../sync/lead-conversion.ts'

/**
 * Reads a lead or contact table's changes one page at a time with Dataverse change tracking
 * (shared/reference/dataverse-web-api-and-msal.md §2): with no cursor, a full read with
 * `Prefer: odata.track-changes`, paged by `@odata.nextLink`, whose last page carries an
 * `@odata.deltaLink`; with a cursor (either link), the page it points at. A delta read pages the same
 * way and answers new and updated rows first, then deletes as `$deletedEntity`.
 *
 * The cursor is the link itself: opaque, Dataverse's own, not personal data. The caller saves the
 * returned cursor only after the page's changes are durably queued or applied (issue 12 §10), so a
 * reader stopped in between reads the same page again: at least once, nothing lost.
 */

/** Dataverse's table (logical name) → Web API entity set and primary key. */
export const TABLES: Readonly<Record<SyncTable, { readonly entitySet: string, readonly primaryKey: string }>> = {
  lead: { entitySet: 'leads', primaryKey: 'leadid' },
  contact: { entitySet: 'contacts', primaryKey: 'contactid' }
}

/**
 * Columns every read selects besides the mapped ones: when the row changed, and who changed it —
 * `_modifiedby_value` equal to the service's WhoAmI user marks our own write, an echo (issue 12 §6).
 */
const AUTHORSHIP_COLUMNS = ['modifiedon', '_modifiedby_value'] as const

/** Dataverse's ExpiredVersionStamp: "Version stamp associated with the client has expired. Please perform a full sync." (§2) */
const EXPIRED_VERSION_STAMP = '0x80044352'

export interface ChangedRow {
  readonly id: string
  /** ISO date-time of the row's last change, as Dataverse answered it. */
  readonly modifiedOn: string | undefined
  /** The systemuser who last changed the row. */
  readonly modifiedBy: string | undefined
  /** The selected columns only, by Dataverse logical name; a column Dataverse left out is absent. */
  readonly columns: Readonly<Record<string, unknown>>
  /**
   * The formatted value (FormattedValue annotation) of each selected column Dataverse labelled: an
   * option set's label, also a date's or an amount's display text; the caller picks the columns whose
   * label it uses (option-labels.ts `labelledColumns`).
   */
  readonly labels: Readonly<Record<string, string>>
}

export type TableChangesPage =
  | {
    readonly kind: 'page'
    readonly upserted: readonly ChangedRow[]
    readonly deletedIds: readonly string[]
    /** The link to read next: a nextLink while this read has pages left, else the deltaLink. */
    readonly cursor: string
    /** True on a read's last page: `cursor` is a delta link, nothing more to read until something changes. */
    readonly caughtUp: boolean
  }
  /**
   * The cursor cannot be followed: Dataverse says its delta token expired (7 days by default, §2),
   * or it selects other columns than the mapping now asks for. Restart with a full read (no cursor).
   */
  | { readonly kind: 'restart', readonly reason: 'delta-token-expired' | 'columns-changed' }
  /**
   * The table's change tracking is off (§2), so a `modifiedon` watermark must do: the full read's
   * first page came without `Preference-Applied: odata.track-changes` (`trackingOffAnswer`), or a
   * later page ended the read without a delta link.
   */
  | { readonly kind: 'change-tracking-off' }

export interface ReadTableChangesOptions {
  readonly table: SyncTable
  /** Dataverse columns to read, besides the primary key and the authorship columns (see `mappedColumns`). */
  readonly columns: readonly string[]
  /** Undefined: begin a full read. */
  readonly cursor: string | undefined
  /** `odata.maxpagesize`; Dataverse pages at 5,000 without it (§2). */
  readonly pageSize?: number
}

/** The Dataverse columns of `table` that the field mapping names, in the file's order, each once. */
export function mappedColumns (mapping: FieldMapping, table: SyncTable): string[] {
  const columns = mapping.fields.flatMap((entry) => entry[table] === null ? [] : [entry[table]])
  return [...new Set(columns)]
}

/** The `$select` of a read: the primary key, the asked columns and the authorship columns, each once. */
export function selectedColumns (table: SyncTable, columns: readonly string[]): string[] {
  return [...new Set([TABLES[table].primaryKey, ...columns, ...AUTHORSHIP_COLUMNS])]
}

/**
 * Whether a saved cursor still reads the columns wanted now. Dataverse keeps a read's `$select` in
 * its next and delta links (§2), so after a mapping change an old link would go on answering the old
 * columns and a newly mapped field would never arrive: such a cursor is dropped for a full read.
 */
export function cursorSelectsColumns (cursor: string, wanted: readonly string[]): boolean {
  const select = new URL(cursor, 'https://cursor.invalid/').searchParams.get('$select')
  if (select === null) return false
  const saved = new Set(select.split(',').map((column) => column.trim()))
  return saved.size === new Set(wanted).size && wanted.every((column) => saved.has(column))
}

export async function readTableChanges (client: DataverseClient, options: ReadTableChangesOptions): Promise<TableChangesPage> {
  const { entitySet, primaryKey } = TABLES[options.table]
  const select = selectedColumns(options.table, options.columns)
  if (options.cursor !== undefined && !cursorSelectsColumns(options.cursor, select)) return { kind: 'restart', reason: 'columns-changed' }
  const pathOrLink = options.cursor ?? `${entitySet}?$select=${select.join(',')}`
  let page
  try {
    page = await client.retrieveTrackedPage<Record<string, unknown>>(pathOrLink, { formattedValues: true, ...(options.pageSize === undefined ? {} : { maxPageSize: options.pageSize }) })
  } catch (error) {
    if (error instanceof DataverseError && error.code === EXPIRED_VERSION_STAMP) return { kind: 'restart', reason: 'delta-token-expired' }
    throw error
  }
  // On the first page: its rows are dropped unread, so the table is read once, by the watermark.
  if (trackingOffAnswer({ fullReadStart: options.cursor === undefined, ...page })) return { kind: 'change-tracking-off' }
  const cursor = page.nextLink ?? page.deltaLink
  // A read whose first page said tracked but whose end has no delta link: never seen, kept as the backstop.
  if (cursor === undefined) return { kind: 'change-tracking-off' }
  const { upserted, deletedIds } = splitChanges(page.value, primaryKey, select)
  return { kind: 'page', upserted, deletedIds, cursor, caughtUp: page.nextLink === undefined }
}

/**
 * Whether an answer to `Prefer: odata.track-changes` says the table's change tracking is off.
 * Dataverse names the preferences it honoured in `Preference-Applied` (reference §1.2, §2: a tracked
 * read answers `Preference-Applied: odata.track-changes`). What it answers for a table without change
 * tracking is not shown in the reference; read here as OData lets a service do with a preference it
 * cannot honour: ignored, so not named, and no delta link. Only a full read's first page (or a probe,
 * which is one) decides by the header, since the reference shows the header on that request; a delta
 * link is taken as tracking on whatever the header says, as it can only come from a tracked read.
 */
export function trackingOffAnswer (answer: { readonly fullReadStart: boolean, readonly trackChangesApplied: boolean, readonly deltaLink: string | undefined }): boolean {
  return answer.fullReadStart && !answer.trackChangesApplied && answer.deltaLink === undefined
}

/**
 * Asks Dataverse whether `table`'s change tracking is on now, for a table read by `modifiedon`: a
 * tracked read of one row, its primary key only (`odata.maxpagesize=1`; `$top` is refused with
 * track-changes, §2). One request; its row is not used.
 */
export async function changeTrackingIsOn (client: DataverseClient, table: SyncTable): Promise<boolean> {
  const { entitySet, primaryKey } = TABLES[table]
  const page = await client.retrieveTrackedPage(`${entitySet}?$select=${primaryKey}`, { maxPageSize: 1 })
  return !trackingOffAnswer({ fullReadStart: true, ...page })
}

/**
 * A delta page mixes changed rows and `{ "@odata.context": "…/$deletedEntity", id, reason: "deleted" }`
 * entries (§2). Changed rows keep only the selected columns: the etag and anything else Dataverse
 * adds are not ours to carry.
 */
export function splitChanges (value: ReadonlyArray<Readonly<Record<string, unknown>>>, primaryKey: string, select: readonly string[]): { upserted: ChangedRow[], deletedIds: string[] } {
  const upserted: ChangedRow[] = []
  const deletedIds: string[] = []
  for (const row of value) {
    const context = row['@odata.context']
    if (typeof context === 'string' && context.endsWith('/$deletedEntity')) {
      if (typeof row.id === 'string') deletedIds.push(row.id.toLowerCase())
      continue
    }
    const id = row[primaryKey]
    // Dataverse always answers the primary key: a row without one cannot be synced, nor skipped unseen.
    if (typeof id !== 'string') throw new DataverseError(200, 'CHANGE_WITHOUT_ID', `a changed row without its ${primaryKey}`)
    const columns: Record<string, unknown> = {}
    const labels: Record<string, string> = {}
    const formatted = formattedValuesOf(row)
    for (const column of select) {
      if (column === primaryKey || column === 'modifiedon' || column === '_modifiedby_value') continue
      if (Object.hasOwn(row, column)) columns[column] = row[column]
      if (Object.hasOwn(formatted, column)) labels[column] = formatted[column]!
    }
    upserted.push({
      id: id.toLowerCase(),
      modifiedOn: typeof row.modifiedon === 'string' ? row.modifiedon : undefined,
      modifiedBy: typeof row._modifiedby_value === 'string' ? row._modifiedby_value : undefined,
      columns,
      labels
    })
  }
  return { upserted, deletedIds }
}

/**
 * What a change read of `table` selects: the mapped columns, the sync filter `new_synctomkto` where
 * start-up found the table has it (selecting a column a table lacks is refused, 400), and on
 * contacts the lead each was qualified from, which every contact table has (`originatingleadid`).
 */
export function changeReadColumns (mapping: FieldMapping, table: SyncTable, options: { readonly syncFilter: boolean }): string[] {
  return [...new Set([
    ...mappedColumns(mapping, table),
    ...(options.syncFilter ? [SYNC_FILTER_COLUMN] : []),
    ...(table === 'contact' ? [ORIGINATING_LEAD_COLUMN] : [])
  ])]
}
