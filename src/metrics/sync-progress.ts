import type { RedisClient } from '../queue/connections.ts'
import { syncFeedProgressKey } from '../queue/redis-keys.ts'
import type { DynamicsChangePassOutcome } from '../background-sync/dynamics-change-pass.ts'
import type { DeliveryOutcome } from '../background-sync/dynamics-to-marketo-delivery.ts'
import type { MarketoChangePassOutcome } from '../background-sync/marketo-change-pass.ts'
import type { FeedDirection } from '../background-sync/checkpoints.ts'
import type { ServiceMetrics } from './service-metrics.ts'

/**
 * The background sync's passes as metrics: records per direction, entity and outcome (counters, in
 * the process that ran the pass), and the times the sync lag is measured from (in Redis, shared).
 *
 * **Sync lag**, per direction: the age of the oldest change that may not be applied yet, measured as
 * `now − caughtUpAt`, the largest over the direction's feeds (lead and contact; Marketo's one
 * person feed). `caughtUpAt` is when the last pass that ended caught up *began* reading: that pass
 * read everything its source held at that moment (`caughtUp`: no next page) and its checkpoint was
 * saved only after the page was applied, so every change made before `caughtUpAt` is applied, and
 * the oldest one that may not be is no older than `now − caughtUpAt`. A feed never caught up yet
 * (a first sync under way) is measured from its first read. A checkpoint's `savedAt` alone is not
 * the lag: a pass deep in a backlog saves its checkpoint every page while the oldest unapplied
 * change stays old. So a healthy sync's lag saw-tooths between 0 and about one poll interval plus
 * a pass; a stuck one (a failing pass, a spent Marketo budget, no worker) grows without bound.
 */
export interface SyncPassObserver {
  dynamicsPass (table: string, startedAt: number, outcome: DynamicsChangePassOutcome, delivered?: DeliveryOutcome): Promise<void>
  marketoPass (startedAt: number, outcome: MarketoChangePassOutcome): Promise<void>
}

const DYNAMICS_OUTCOMES = ['created', 'updated', 'unchanged', 'flaggedDeleted', 'linked', 'reported', 'refused', 'filtered', 'converted'] as const
const MARKETO_OUTCOMES = ['written', 'unchanged', 'unlinked', 'recordMissing'] as const

export class SyncProgress implements SyncPassObserver {
  constructor (private readonly redis: RedisClient, private readonly prefix: string, private readonly metrics: Pick<ServiceMetrics, 'recordsSynced' | 'syncPasses'>) {}

  async dynamicsPass (table: string, startedAt: number, outcome: DynamicsChangePassOutcome, delivered?: DeliveryOutcome): Promise<void> {
    const direction = 'dynamics-to-marketo'
    if (delivered !== undefined) {
      for (const name of DYNAMICS_OUTCOMES) if (delivered[name] > 0) this.metrics.recordsSynced.inc({ direction, entity: table, outcome: kebab(name) }, delivered[name])
    }
    await this.#pass(direction, table, startedAt, outcome.kind === 'advanced' && outcome.caughtUp ? 'caught-up' : outcome.kind)
  }

  async marketoPass (startedAt: number, outcome: MarketoChangePassOutcome): Promise<void> {
    const direction = 'marketo-to-dynamics'
    if (outcome.kind === 'advanced') {
      for (const name of MARKETO_OUTCOMES) if (outcome[name] > 0) this.metrics.recordsSynced.inc({ direction, entity: 'person', outcome: kebab(name) }, outcome[name])
      for (const refused of outcome.refused) this.metrics.recordsSynced.inc({ direction, entity: refused.table, outcome: 'refused' })
    }
    await this.#pass(direction, 'person', startedAt, outcome.kind === 'advanced' && outcome.caughtUp ? 'caught-up' : outcome.kind)
  }

  async #pass (direction: FeedDirection, table: string, startedAt: number, kind: string): Promise<void> {
    this.metrics.syncPasses.inc({ direction, outcome: kind })
    if (kind === 'skipped') return
    const key = syncFeedProgressKey(this.prefix, direction, table)
    // HSETNX: the first read is kept; the caught-up time only moves forward (a slow pass that began
    // earlier and ends later must not move it back).
    await this.redis.eval(RECORD_PASS, 1, key, String(startedAt), kind === 'caught-up' ? '1' : '0')
  }
}

/** Seconds of lag per feed (see SyncPassObserver above); feeds never read are absent. `now` in ms. */
export async function readSyncLag (redis: RedisClient, prefix: string, feeds: ReadonlyArray<{ readonly direction: FeedDirection, readonly table: string }>, now: number): Promise<Array<{ direction: FeedDirection, table: string, seconds: number }>> {
  const lags: Array<{ direction: FeedDirection, table: string, seconds: number }> = []
  for (const feed of feeds) {
    const [firstReadAt, caughtUpAt] = await redis.hmget(syncFeedProgressKey(prefix, feed.direction, feed.table), 'firstReadAt', 'caughtUpAt')
    const since = caughtUpAt ?? firstReadAt
    if (since === null || since === undefined) continue
    lags.push({ ...feed, seconds: Math.max(0, now - Number(since)) / 1000 })
  }
  return lags
}

/** KEYS[1] the feed's progress hash; ARGV[1] the pass's start (ms), ARGV[2] '1' when it ended caught up. */
const RECORD_PASS = `
redis.call('HSETNX', KEYS[1], 'firstReadAt', ARGV[1])
if ARGV[2] == '1' then
  local current = tonumber(redis.call('HGET', KEYS[1], 'caughtUpAt') or '0')
  if tonumber(ARGV[1]) > current then redis.call('HSET', KEYS[1], 'caughtUpAt', ARGV[1]) end
end
return 1
`

function kebab (name: string): string {
  return name.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`)
}
