import type { DataverseClient } from '../dynamics/dataverse-client.ts'
import { changeTrackingIsOn, readTableChanges, type TableChangesPage } from '../dynamics/table-changes.ts'
import {
  DEFAULT_TRACKING_RECHECK_MS,
  decodeWatermarkCursor,
  encodeWatermarkCursor,
  initialWatermarkCursor,
  isWatermarkCursor,
  readTableWatermark,
  trackingRecheckDue
} from '../dynamics/table-watermark-read.ts'
import type { SyncTable } from '../sync/field-mapping.ts'
import type { CheckpointStore } from './checkpoints.ts'
import type { FeedLeases } from './feed-lease.ts'

/**
 * One step of reading a Dynamics table's changes durably (issue 12 §1, §10): load the checkpoint,
 * read the page at its cursor, hand the page to `deliver` (which queues or applies its changes),
 * and only when that resolves, save the next cursor with the version loaded. A runner stopped
 * anywhere before the save leaves the old cursor, and the next step reads the same page again:
 * changes are delivered at least once, never lost, so `deliver` must be idempotent per change.
 * A save refused because another runner advanced the checkpoint meanwhile throws
 * CheckpointConflictError: that runner's page was delivered by both, and the loser must not go on.
 * That is the backstop: the step holds its feed's lease from the load to the save (feed-lease.ts),
 * so a second step of the same table, in this worker or another, ends at once as skipped.
 *
 * The checkpoint is in one of two modes, told apart by its cursor: a change-tracking link (a URL,
 * table-changes.ts) or a `modifiedon` watermark (JSON, table-watermark-read.ts). A table whose
 * change tracking is off (reference §2) is switched to the watermark, from its oldest change, as soon
 * as the full read's first page says so, so the table is read once; deletes are then not seen. While
 * on the watermark, between scans and about once an hour, one request of one row asks whether its
 * tracking is on now (it can be turned on, never off, §2); when it is, the checkpoint is reset and
 * the next step starts a tracked full read. That read answers every row as it is then and ends on a
 * delta link covering what changes after it began, so nothing written during the switch is lost;
 * only deletes made before the full read, as in any watermark time, are not seen.
 */

export type DeliveredPage = Extract<TableChangesPage, { kind: 'page' }>

export interface DynamicsChangePassOptions {
  readonly client: DataverseClient
  readonly checkpoints: CheckpointStore
  /** One step per table at a time, across workers. */
  readonly leases: FeedLeases
  readonly table: SyncTable
  readonly columns: readonly string[]
  readonly pageSize?: number
  /** The watermark read's overlap for late-appearing rows (table-watermark-read.ts); its default when omitted. */
  readonly watermarkOverlapMs?: number
  /** How often a table on the watermark is asked whether its change tracking is on now; `DEFAULT_TRACKING_RECHECK_MS` when omitted. */
  readonly trackingRecheckMs?: number
  /** The clock the recheck is timed by; the system's when omitted. */
  readonly now?: () => Date
  readonly deliver: (page: DeliveredPage) => Promise<void>
}

export type DynamicsChangePassOutcome =
  | { readonly kind: 'advanced', readonly version: number, readonly caughtUp: boolean, readonly upserted: number, readonly deleted: number }
  /**
   * The cursor was dropped (expired delta token, or a mapping that selects other columns): the next
   * step starts a full read. `change-tracking-off`: the table answered without a delta link, and the
   * next step starts a full read by `modifiedon` instead. `change-tracking-on`: a table read by
   * `modifiedon` has change tracking now, and the next step starts a tracked full read.
   */
  | { readonly kind: 'reset', readonly reason: 'delta-token-expired' | 'columns-changed' | 'change-tracking-off' | 'change-tracking-on', readonly version: number }
  /** Nothing read and nothing written: another step of this table holds its lease. */
  | { readonly kind: 'skipped', readonly reason: 'another pass is running' }

export async function runDynamicsChangePass (options: DynamicsChangePassOptions): Promise<DynamicsChangePassOutcome> {
  const name = { direction: 'dynamics-to-marketo', table: options.table } as const
  const leased = await options.leases.run(name, async (leaseLost) => await runLeasedPass(options, name, leaseLost))
  return leased.kind === 'ran' ? leased.value : leased
}

async function runLeasedPass (
  options: DynamicsChangePassOptions,
  name: { readonly direction: 'dynamics-to-marketo', readonly table: DynamicsChangePassOptions['table'] },
  leaseLost: AbortSignal
): Promise<DynamicsChangePassOutcome> {
  const checkpoint = await options.checkpoints.load(name)
  const pageSize = options.pageSize === undefined ? {} : { pageSize: options.pageSize }
  let watermark = checkpoint.cursor !== undefined && isWatermarkCursor(checkpoint.cursor) ? checkpoint.cursor : undefined
  const byWatermark = watermark !== undefined
  const now = options.now?.() ?? new Date()
  if (watermark !== undefined) {
    const decoded = decodeWatermarkCursor(watermark)
    if (trackingRecheckDue(decoded, now, options.trackingRecheckMs ?? DEFAULT_TRACKING_RECHECK_MS)) {
      if (await changeTrackingIsOn(options.client, options.table)) {
        const saved = await options.checkpoints.save(name, checkpoint.version, undefined)
        return { kind: 'reset', reason: 'change-tracking-on', version: saved.version }
      }
      // Saved with this step's cursor, so the next check is an interval away (a failed step asks again).
      watermark = encodeWatermarkCursor({ ...decoded, trackingCheckedAt: now.toISOString() })
    }
  }
  const page = watermark !== undefined
    ? await readTableWatermark(options.client, {
      table: options.table,
      columns: options.columns,
      cursor: watermark,
      ...pageSize,
      ...(options.watermarkOverlapMs === undefined ? {} : { overlapMs: options.watermarkOverlapMs })
    })
    : await readTableChanges(options.client, { table: options.table, columns: options.columns, cursor: checkpoint.cursor, ...pageSize })
  if (page.kind === 'change-tracking-off' || page.kind === 'restart') {
    // A watermark scan restarts as a watermark scan: its table's tracking is still off.
    const cursor = page.kind === 'change-tracking-off'
      ? initialWatermarkCursor(options.table, options.columns, now)
      : byWatermark ? initialWatermarkCursor(options.table, options.columns, checkedAt(watermark)) : undefined
    // Versioned like any save: a runner that loaded the checkpoint before another advanced it must
    // not throw that runner's progress away.
    const saved = await options.checkpoints.save(name, checkpoint.version, cursor)
    return { kind: 'reset', reason: page.kind === 'restart' ? page.reason : 'change-tracking-off', version: saved.version }
  }
  // A lease lost while reading (this process paused past its TTL): another step may be delivering
  // this page now, so this one stops before writing anything.
  leaseLost.throwIfAborted()
  await options.deliver(page)
  const saved = await options.checkpoints.save(name, checkpoint.version, page.cursor)
  return { kind: 'advanced', version: saved.version, caughtUp: page.caughtUp, upserted: page.upserted.length, deleted: page.deletedIds.length }
}

/** When the table's tracking was last found off, kept across a restarted watermark scan. */
function checkedAt (watermark: string | undefined): Date | undefined {
  const at = watermark === undefined ? undefined : decodeWatermarkCursor(watermark).trackingCheckedAt
  return at === undefined ? undefined : new Date(at)
}
