import type { DataverseClient } from '../dynamics/dataverse-client.ts'
import { readTableChanges, type TableChangesPage } from '../dynamics/table-changes.ts'
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
  readonly deliver: (page: DeliveredPage) => Promise<void>
}

export type DynamicsChangePassOutcome =
  | { readonly kind: 'advanced', readonly version: number, readonly caughtUp: boolean, readonly upserted: number, readonly deleted: number }
  /** The cursor was dropped (expired delta token, or a mapping that selects other columns): the next step starts a full read. */
  | { readonly kind: 'reset', readonly reason: 'delta-token-expired' | 'columns-changed', readonly version: number }
  /** Nothing read and nothing saved: the table's change tracking is off, and a watermark read must take over. */
  | { readonly kind: 'change-tracking-off' }
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
  const page = await readTableChanges(options.client, {
    table: options.table,
    columns: options.columns,
    cursor: checkpoint.cursor,
    ...(options.pageSize === undefined ? {} : { pageSize: options.pageSize })
  })
  if (page.kind === 'change-tracking-off') return page
  if (page.kind === 'restart') {
    // Versioned like any save: a runner that loaded the checkpoint before another advanced it must
    // not throw that runner's progress away.
    const saved = await options.checkpoints.save(name, checkpoint.version, undefined)
    return { kind: 'reset', reason: page.reason, version: saved.version }
  }
  // A lease lost while reading (this process paused past its TTL): another step may be delivering
  // this page now, so this one stops before writing anything.
  leaseLost.throwIfAborted()
  await options.deliver(page)
  const saved = await options.checkpoints.save(name, checkpoint.version, page.cursor)
  return { kind: 'advanced', version: saved.version, caughtUp: page.caughtUp, upserted: page.upserted.length, deleted: page.deletedIds.length }
}
