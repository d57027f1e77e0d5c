import type { FeedDirection } from '../background-sync/checkpoints.ts'
import type { DynamicsChangePassOutcome } from '../background-sync/dynamics-change-pass.ts'
import type { DeliveryOutcome } from '../background-sync/dynamics-to-marketo-delivery.ts'
import type { MarketoChangePassOutcome } from '../background-sync/marketo-change-pass.ts'
import type { SyncPassObserver } from '../metrics/sync-progress.ts'
import type { RedisClient } from '../queue/connections.ts'
import { syncThroughputKey } from '../queue/redis-keys.ts'

/**
 * Throughput for the status page: records the sync wrote to the other side in the last hour, per
 * direction. The passes count them into one Redis counter per direction and minute, kept a little
 * over an hour; the page sums the last sixty. This is the cheapest honest source: the Prometheus
 * counters live in each worker's memory (only a scrape adds them up), and BullMQ keeps just the last
 * hundred completed passes, a few minutes at the default poll intervals, so neither says "the last hour".
 *
 * The minute is the writing process's clock; a skew between workers moves a count by a minute at most.
 */

const WINDOW_MINUTES = 60
const KEEP_SECONDS = (WINDOW_MINUTES + 5) * 60

export class SyncThroughput {
  constructor (private readonly redis: RedisClient, private readonly prefix: string, private readonly clock: () => number = Date.now) {}

  async record (direction: FeedDirection, records: number): Promise<void> {
    if (records <= 0) return
    const key = syncThroughputKey(this.prefix, direction, Math.floor(this.clock() / 60_000))
    await this.redis.multi().incrby(key, records).expire(key, KEEP_SECONDS).exec()
  }

  /** Records written in the last hour (the current minute and the 59 before it). */
  async lastHour (direction: FeedDirection): Promise<number> {
    const minute = Math.floor(this.clock() / 60_000)
    const keys = Array.from({ length: WINDOW_MINUTES }, (_, back) => syncThroughputKey(this.prefix, direction, minute - back))
    const counts = await this.redis.mget(...keys)
    return counts.reduce((sum, count) => sum + Number(count ?? 0), 0)
  }
}

/** Records a Dynamics → Marketo pass wrote to Marketo: persons created or updated, links made, deletions flagged. */
export function dynamicsRecordsWritten (delivered: DeliveryOutcome | undefined): number {
  if (delivered === undefined) return 0
  return delivered.created + delivered.updated + delivered.flaggedDeleted + delivered.linked + delivered.converted
}

/** Records a Marketo → Dynamics pass wrote to Dynamics. */
export function marketoRecordsWritten (outcome: MarketoChangePassOutcome): number {
  return outcome.kind === 'advanced' ? outcome.written : 0
}

/**
 * The pass observer with throughput counted too: wraps the metrics' observer (src/metrics/
 * sync-progress.ts), so the passes report once and both learn of it. A failed count is not a failed
 * pass: the records are written; the page then shows a little less.
 */
export function countingThroughput (inner: SyncPassObserver, throughput: Pick<SyncThroughput, 'record'>): SyncPassObserver {
  return {
    async dynamicsPass (table: string, startedAt: number, outcome: DynamicsChangePassOutcome, delivered?: DeliveryOutcome): Promise<void> {
      await Promise.all([
        inner.dynamicsPass(table, startedAt, outcome, delivered),
        throughput.record('dynamics-to-marketo', dynamicsRecordsWritten(delivered)).catch(() => undefined)
      ])
    },
    async marketoPass (startedAt: number, outcome: MarketoChangePassOutcome): Promise<void> {
      await Promise.all([
        inner.marketoPass(startedAt, outcome),
        throughput.record('marketo-to-dynamics', marketoRecordsWritten(outcome)).catch(() => undefined)
      ])
    }
  }
}
