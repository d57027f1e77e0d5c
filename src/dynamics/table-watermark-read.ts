import type { SyncTable } from '../sync/field-mapping.ts'
import type { DataverseClient } from './dataverse-client.ts'
import { DataverseError } from './dataverse-errors.ts'
import { TABLES, selectedColumns, splitChanges, type TableChangesPage } from './table-changes.ts'

/**
 * Reads a lead or contact table's changes by its `modifiedon` column, for a table whose change
 * tracking is off (issue 12 §1; shared/reference/dataverse-web-api-and-msal.md §2: change tracking is
 * a per-table setting, and without it `Prefer: odata.track-changes` answers no delta link). It
 * answers the same page shape as the change-tracking read, with no deletes: a deleted row is simply
 * no longer there, and a watermark read never learns it was (the delete's own event is the only
 * source of a delete, conventions "never delete from an incomplete read").
 *
 * Rows are read in `modifiedon, <primary key>` order (§1.10), one page at a time, each page asked
 * for by a keyset filter after the last row the read has delivered: `modifiedon gt T or (modifiedon
 * eq T and <key> gt ID)`. So a page boundary among many rows with the same `modifiedon` (a bulk
 * import stamps thousands with one second) neither skips a row nor reads the same page forever, as
 * `modifiedon ge T` would. Dataverse compares and orders the key itself, so no client-side notion
 * of GUID order is needed.
 *
 * Clock skew: `modifiedon` is stamped by Dataverse when the write runs, not when it commits, and
 * Dataverse's servers need not agree to the second, so a row stamped T may appear after rows stamped
 * later were read. The cursor therefore only *settles* past rows older than an overlap (by
 * Dataverse's own clock, its response's `Date`): each new scan starts again from the last settled
 * row and reads the recent rows again until they are older than the overlap. A row is so delivered
 * a few times in its first seconds, never again after; the delivery is idempotent per change
 * (dynamics-to-marketo-delivery.ts: a row equal to its last-synced state makes no Marketo call).
 * A row that appears more than the overlap after its stamp is missed until its next change.
 *
 * The cursor is JSON (a change-tracking cursor is a URL, so the two never mix): the columns the scan
 * reads, the settled position, while a scan has pages left the last row it delivered, and when the
 * table's change tracking was last found off. It holds timestamps, ids and column names only.
 *
 * Change tracking can be turned on later (and never off again, §2): between scans, once the last
 * check is `DEFAULT_TRACKING_RECHECK_MS` old, the pass asks again (`trackingRecheckDue`) and goes
 * back to a tracked full read when it is on (dynamics-change-pass.ts).
 */

/** The default overlap: how much later than its stamp a row may still appear and be read. */
export const DEFAULT_WATERMARK_OVERLAP_MS = 10_000

/**
 * The least overlap: `modifiedon` has whole seconds (§1.10), so a row settled in the very second it
 * was stamped could be edited again within that second, keep its stamp, and fall behind the cursor.
 */
export const MIN_WATERMARK_OVERLAP_MS = 1_000

/**
 * How often a table read by `modifiedon` is asked whether its change tracking is on now: one
 * request of one row, so an hour costs nothing, and deletes are seen again within the hour.
 */
export const DEFAULT_TRACKING_RECHECK_MS = 60 * 60 * 1000

/** A row's place in `modifiedon, <key>` order. */
export interface WatermarkPosition {
  /** `modifiedon` as Dataverse answered it: `2024-01-01T00:00:00Z`, whole seconds (§1.10). */
  readonly modifiedOn: string
  readonly id: string
}

export interface WatermarkCursor {
  /** The `$select` of the scan; a mapping that selects other columns starts a new one. */
  readonly select: readonly string[]
  /** Every row up to here was delivered and was older than the overlap when read; null: none yet. */
  readonly settled: WatermarkPosition | null
  /** The last row this scan delivered while it has pages left; null: the next page starts a scan from `settled`. */
  readonly readThrough: WatermarkPosition | null
  /** When the table's change tracking was last found off (ISO, this service's clock); absent: never asked (a cursor from before the check). */
  readonly trackingCheckedAt?: string
}

export class WatermarkCursorError extends Error {
  readonly code = 'WATERMARK_CURSOR_INVALID'
  constructor () {
    super('the saved modifiedon cursor is not one this service wrote; delete the checkpoint to read the table again from the start')
    this.name = 'WatermarkCursorError'
  }
}

/** A change-tracking cursor is an `@odata.nextLink`/`@odata.deltaLink` URL; a watermark cursor is a JSON object. */
export function isWatermarkCursor (cursor: string): boolean {
  return cursor.startsWith('{')
}

/** The cursor of a table's first watermark scan: every row, from the oldest change; `trackingCheckedAt` when tracking was just found off. */
export function initialWatermarkCursor (table: SyncTable, columns: readonly string[], trackingCheckedAt?: Date): string {
  return encodeWatermarkCursor({
    select: selectedColumns(table, columns),
    settled: null,
    readThrough: null,
    ...(trackingCheckedAt === undefined ? {} : { trackingCheckedAt: trackingCheckedAt.toISOString() })
  })
}

export function encodeWatermarkCursor (cursor: WatermarkCursor): string {
  return JSON.stringify({
    watermark: 'modifiedon',
    select: cursor.select,
    settled: cursor.settled,
    readThrough: cursor.readThrough,
    ...(cursor.trackingCheckedAt === undefined ? {} : { trackingCheckedAt: cursor.trackingCheckedAt })
  })
}

// Checked before a position is put in a $filter: a cursor is read back from Redis, and only a
// timestamp and a GUID may reach the query.
const DATAVERSE_DATETIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,7})?Z$/
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const COLUMN = /^[a-z_][a-z0-9_]*$/
const CHECKED_AT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/

export function decodeWatermarkCursor (text: string): WatermarkCursor {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    throw new WatermarkCursorError()
  }
  const { watermark, select, settled, readThrough, trackingCheckedAt } = (parsed ?? {}) as Record<string, unknown>
  if (watermark !== 'modifiedon' || !Array.isArray(select) || !select.every((column) => typeof column === 'string' && COLUMN.test(column))) {
    throw new WatermarkCursorError()
  }
  if (trackingCheckedAt !== undefined && (typeof trackingCheckedAt !== 'string' || !CHECKED_AT.test(trackingCheckedAt) || Number.isNaN(Date.parse(trackingCheckedAt)))) {
    throw new WatermarkCursorError()
  }
  return {
    select: select as string[],
    settled: positionOrNull(settled),
    readThrough: positionOrNull(readThrough),
    ...(trackingCheckedAt === undefined ? {} : { trackingCheckedAt })
  }
}

function positionOrNull (value: unknown): WatermarkPosition | null {
  if (value === null) return null
  const { modifiedOn, id } = (value ?? {}) as Record<string, unknown>
  if (typeof modifiedOn !== 'string' || !DATAVERSE_DATETIME.test(modifiedOn) || typeof id !== 'string' || !GUID.test(id)) {
    throw new WatermarkCursorError()
  }
  return { modifiedOn, id }
}

/** The keyset `$filter` of the rows after `after` in `modifiedon, <key>` order; undefined: every row. */
export function rowsAfterFilter (primaryKey: string, after: WatermarkPosition | null): string | undefined {
  if (after === null) return undefined
  // Datetime literals unquoted, GUIDs unquoted (§1.10).
  return `modifiedon gt ${after.modifiedOn} or (modifiedon eq ${after.modifiedOn} and ${primaryKey} gt ${after.id})`
}

/**
 * Where the cursor goes after a page of rows (in read order) was delivered: settled past the leading
 * rows stamped at or before `settledBefore`, read through the last row while Dataverse has more; a
 * read that has no more rows is caught up, and the next one starts a scan from the settled row.
 */
export function nextWatermarkCursor (
  cursor: WatermarkCursor,
  rows: readonly WatermarkPosition[],
  hasMore: boolean,
  settledBefore: Date
): { readonly cursor: WatermarkCursor, readonly caughtUp: boolean } {
  let settled = cursor.settled
  for (const row of rows) {
    // Rows come in modifiedon order: once one is too recent, every later one is too.
    if (Date.parse(row.modifiedOn) > settledBefore.getTime()) break
    settled = row
  }
  const last = rows[rows.length - 1]
  const readThrough = hasMore && last !== undefined ? last : null
  return { cursor: { ...cursor, settled, readThrough }, caughtUp: readThrough === null }
}

/**
 * Whether the pass asks Dataverse, before this read, if the table's change tracking is on now: only
 * between scans (a scan with pages left finishes first, so its rows are not read twice), and once
 * the last check is `intervalMs` old or was never made. A check stamped more than `intervalMs` in the
 * future (a worker whose clock ran ahead) is not trusted either, or the table could wait for it.
 */
export function trackingRecheckDue (cursor: WatermarkCursor, now: Date, intervalMs: number): boolean {
  if (cursor.readThrough !== null) return false
  if (cursor.trackingCheckedAt === undefined) return true
  const elapsed = now.getTime() - Date.parse(cursor.trackingCheckedAt)
  return elapsed >= intervalMs || elapsed < -intervalMs
}

export interface ReadTableWatermarkOptions {
  readonly table: SyncTable
  /** Dataverse columns to read, besides the primary key and the authorship columns. */
  readonly columns: readonly string[]
  /** A watermark cursor (`initialWatermarkCursor` for the first scan). */
  readonly cursor: string
  /** `odata.maxpagesize`; Dataverse pages at 5,000 without it (§1.10). */
  readonly pageSize?: number
  /** How long after its stamp a row may still appear; `DEFAULT_WATERMARK_OVERLAP_MS` when omitted, at least `MIN_WATERMARK_OVERLAP_MS`. */
  readonly overlapMs?: number
}

export async function readTableWatermark (client: DataverseClient, options: ReadTableWatermarkOptions): Promise<Exclude<TableChangesPage, { kind: 'change-tracking-off' }>> {
  const { entitySet, primaryKey } = TABLES[options.table]
  const cursor = decodeWatermarkCursor(options.cursor)
  const select = selectedColumns(options.table, options.columns)
  if (!sameColumns(cursor.select, select)) return { kind: 'restart', reason: 'columns-changed' }
  const filter = rowsAfterFilter(primaryKey, cursor.readThrough ?? cursor.settled)
  const requestedAt = new Date()
  const page = await client.retrieveQueryPage<Record<string, unknown>>(entitySet, {
    select,
    ...(filter === undefined ? {} : { filter }),
    orderBy: `modifiedon asc,${primaryKey} asc`
  }, { formattedValues: true, ...(options.pageSize === undefined ? {} : { maxPageSize: options.pageSize }) })
  const { upserted } = splitChanges(page.value, primaryKey, select)
  const positions = upserted.map((row) => {
    // Selected on every read: a row without it could be neither ordered nor settled.
    if (row.modifiedOn === undefined || !DATAVERSE_DATETIME.test(row.modifiedOn)) throw new DataverseError(200, 'CHANGE_WITHOUT_MODIFIEDON', 'a row read by modifiedon without a modifiedon')
    return { modifiedOn: row.modifiedOn, id: row.id }
  })
  // Dataverse's clock where it told us; this machine's time of asking otherwise.
  const now = page.serverTime ?? requestedAt
  const overlapMs = Math.max(MIN_WATERMARK_OVERLAP_MS, options.overlapMs ?? DEFAULT_WATERMARK_OVERLAP_MS)
  const next = nextWatermarkCursor(cursor, positions, page.hasMore, new Date(now.getTime() - overlapMs))
  return { kind: 'page', upserted, deletedIds: [], cursor: encodeWatermarkCursor(next.cursor), caughtUp: next.caughtUp }
}

function sameColumns (saved: readonly string[], wanted: readonly string[]): boolean {
  const savedSet = new Set(saved)
  return savedSet.size === new Set(wanted).size && wanted.every((column) => savedSet.has(column))
}
