import type { Queue } from 'bullmq'
import { CheckpointStore, type Checkpoint, type FeedDirection } from '../background-sync/checkpoints.ts'
import { MARKETO_CHECKPOINT } from '../background-sync/marketo-change-pass.ts'
import { SYNC_DIRECTIONS, type SyncPauses } from '../background-sync/sync-pauses.ts'
import { isWatermarkCursor } from '../dynamics/table-watermark-read.ts'
import { readSyncLag } from '../metrics/sync-progress.ts'
import type { RedisClient } from '../queue/connections.ts'
import { QUEUE, type QueueName } from '../queue/names.ts'
import { SYNC_TABLES } from '../sync/field-mapping.ts'

/**
 * Each direction of the background sync as an operator needs it (issue 13 §4): where its change
 * feeds have got to, how far behind they may be, the passes waiting, and whether it is paused.
 *
 * A cursor is never shown: a Dataverse delta or next link is a long URL carrying a token, and
 * Marketo's paging token is opaque; what it is (its kind), whether there is one, its version and
 * when it was saved say all an operator can act on. The lag is the `mds_sync_lag_seconds` measure
 * (src/metrics/sync-progress.ts): the age of the oldest change that may not be applied yet, from
 * when the feed's last caught-up pass began. Not `now − savedAt`: a pass deep in a backlog saves
 * its checkpoint every page while the oldest unapplied change stays old. The backlog of changes
 * itself is not known (neither Dataverse's delta read nor Marketo's feed says how many are left),
 * only whether a read is part-way (a next link) and the pass jobs queued.
 */

export type CursorKind = 'none' | 'delta-link' | 'next-link' | 'watermark' | 'paging-token'

export interface FeedStatus {
  readonly feed: string
  readonly cursor: { readonly kind: CursorKind, readonly version: number, readonly savedAt: Date | undefined }
  readonly lagSeconds: number | undefined
}

export interface DirectionStatus {
  readonly direction: FeedDirection
  readonly paused: boolean
  readonly pausedAt: Date | undefined
  readonly feeds: readonly FeedStatus[]
  /** The direction's pass jobs in BullMQ (added by its job schedulers). */
  readonly passes: { readonly queue: QueueName, readonly waiting: number, readonly active: number, readonly delayed: number, readonly failed: number }
}

export interface SyncDirectionDeps {
  readonly checkpoints: Pick<CheckpointStore, 'load'>
  readonly pauses: Pick<SyncPauses, 'pausedAt' | 'pause' | 'resume'>
  /** The passes' queues, by name (the admin feature opens every queue of the registry). */
  readonly queues: ReadonlyMap<string, Pick<Queue, 'getJobCounts'>>
  /** Where the passes record when they caught up (the sync lag's source). */
  readonly redis: RedisClient
  readonly keyPrefix: string
  readonly now?: () => Date
}

const FEEDS: Readonly<Record<FeedDirection, { readonly tables: readonly string[], readonly queue: QueueName }>> = {
  'dynamics-to-marketo': { tables: SYNC_TABLES, queue: QUEUE.syncDynamicsChanges },
  'marketo-to-dynamics': { tables: [MARKETO_CHECKPOINT.table], queue: QUEUE.syncMarketoChanges }
}

/** Pure: what a cursor is, from its shape (dynamics-change-pass.ts, table-watermark-read.ts, lead-change-feed.ts). */
export function cursorKind (direction: FeedDirection, cursor: string | undefined): CursorKind {
  if (cursor === undefined) return 'none'
  if (direction === 'marketo-to-dynamics') return 'paging-token'
  if (isWatermarkCursor(cursor)) return 'watermark'
  // Dataverse's delta link carries $deltatoken; a next link (a read part-way) carries $skiptoken.
  return /[?&](\$|%24)deltatoken=/i.test(cursor) ? 'delta-link' : 'next-link'
}

export async function syncDirections (deps: SyncDirectionDeps): Promise<DirectionStatus[]> {
  const now = (deps.now ?? (() => new Date()))()
  return await Promise.all(SYNC_DIRECTIONS.map(async (direction) => await directionStatus(deps, direction, now)))
}

export async function pauseSyncDirection (deps: SyncDirectionDeps, direction: FeedDirection): Promise<DirectionStatus> {
  await deps.pauses.pause(direction)
  return await directionStatus(deps, direction, (deps.now ?? (() => new Date()))())
}

export async function resumeSyncDirection (deps: SyncDirectionDeps, direction: FeedDirection): Promise<DirectionStatus> {
  await deps.pauses.resume(direction)
  return await directionStatus(deps, direction, (deps.now ?? (() => new Date()))())
}

async function directionStatus (deps: SyncDirectionDeps, direction: FeedDirection, now: Date): Promise<DirectionStatus> {
  const { tables, queue } = FEEDS[direction]
  const [pausedAt, feeds, counts] = await Promise.all([
    deps.pauses.pausedAt(direction),
    Promise.all(tables.map(async (feed) => {
      const [checkpoint, lag] = await Promise.all([
        deps.checkpoints.load({ direction, table: feed }),
        readSyncLag(deps.redis, deps.keyPrefix, [{ direction, table: feed }], now.getTime())
      ])
      return feedStatus(direction, feed, checkpoint, lag[0]?.seconds)
    })),
    deps.queues.get(queue)?.getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'failed') ?? Promise.resolve({} as Record<string, number>)
  ])
  return {
    direction,
    paused: pausedAt !== undefined,
    pausedAt,
    feeds,
    passes: {
      queue,
      waiting: (counts.waiting ?? 0) + (counts.prioritized ?? 0),
      active: counts.active ?? 0,
      delayed: counts.delayed ?? 0,
      failed: counts.failed ?? 0
    }
  }
}

function feedStatus (direction: FeedDirection, feed: string, checkpoint: Checkpoint, lagSeconds: number | undefined): FeedStatus {
  return {
    feed,
    cursor: { kind: cursorKind(direction, checkpoint.cursor), version: checkpoint.version, savedAt: checkpoint.savedAt },
    lagSeconds: lagSeconds === undefined ? undefined : Math.round(lagSeconds)
  }
}
