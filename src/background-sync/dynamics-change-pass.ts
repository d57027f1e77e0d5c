import type { DataverseClient } from '../dynamics/dataverse-client.ts'
import { readTableChanges, type TableChangesPage } from '../dynamics/table-changes.ts'
import { initialWatermarkCursor, isWatermarkCursor, readTableWatermark } from '../dynamics/table-watermark-read.ts'
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
 * change tracking is off (reference §2) is switched to the watermark, from its oldest change, and
 * stays there; deletes are then not seen.
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
  readonly deliver: (page: DeliveredPage) => Promise<void>
}

export type DynamicsChangePassOutcome =
  | { readonly kind: 'advanced', readonly version: number, readonly caughtUp: boolean, readonly upserted: number, readonly deleted: number }
  /**
   * The cursor was dropped (expired delta token, or a mapping that selects other columns): the next
   * step starts a full read. `change-tracking-off`: the table answered without a delta link, and the
   * next step starts a full read by `modifiedon` instead.
   */
  | { readonly kind: 'reset', readonly reason: 'delta-token-expired' | 'columns-changed' | 'change-tracking-off', readonly version: number }
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
  const watermark = checkpoint.cursor !== undefined && isWatermarkCursor(checkpoint.cursor) ? checkpoint.cursor : undefined
  const byWatermark = watermark !== undefined
  const page = byWatermark
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
    const cursor = page.kind === 'change-tracking-off' || byWatermark ? initialWatermarkCursor(options.table, options.columns) : undefined
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
