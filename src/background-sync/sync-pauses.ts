import type { RedisClient } from '../queue/connections.ts'
import { syncPausesKey } from '../queue/redis-keys.ts'
import type { FeedDirection } from './checkpoints.ts'

/**
 * An operator's pause of one direction of the background sync (issue 13 §4, set through the admin
 * API). A flag in Redis rather than pausing the BullMQ queue: a paused queue would still let its job
 * schedulers pile up jobs, and a pass already handed out would run anyway; the flag is read where
 * each pass job starts (background-sync-worker-feature.ts for the Dynamics tables,
 * marketo-change-scheduler.ts for Marketo), so a paused direction reads nothing and advances no
 * cursor, in every worker at once. A pass already past that check finishes its page. On resume the
 * next pass reads on from the saved cursor: what changed meanwhile arrives then.
 *
 *   <prefix>:{sync-pauses}  hash { <direction> → paused at, epoch ms }
 */
export const SYNC_DIRECTIONS = ['dynamics-to-marketo', 'marketo-to-dynamics'] as const satisfies readonly FeedDirection[]

export class SyncPauses {
  readonly #key: string

  constructor (private readonly redis: RedisClient, prefix: string) {
    this.#key = syncPausesKey(prefix)
  }

  /** When the direction was paused; undefined while it runs. */
  async pausedAt (direction: FeedDirection): Promise<Date | undefined> {
    const at = await this.redis.hget(this.#key, direction)
    return at === null || at === undefined ? undefined : new Date(Number(at))
  }

  async isPaused (direction: FeedDirection): Promise<boolean> {
    return await this.pausedAt(direction) !== undefined
  }

  /** Idempotent: pausing a paused direction keeps its first date. */
  async pause (direction: FeedDirection, at: Date = new Date()): Promise<Date> {
    await this.redis.hsetnx(this.#key, direction, String(at.getTime()))
    return await this.pausedAt(direction) ?? at
  }

  async resume (direction: FeedDirection): Promise<void> {
    await this.redis.hdel(this.#key, direction)
  }
}
