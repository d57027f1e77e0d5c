import type { RedisClient } from '../queue/connections.ts'
import { syncFeedPollPaceKey } from '../queue/redis-keys.ts'
import type { CheckpointName } from './checkpoints.ts'

/**
 * When Marketo's lead-change feed is read next, kept in Redis for every worker (issue 12 §11): the
 * due time the last pass chose from its pace decision (marketo-poll-pace.ts), the delay it chose
 * (an idle pass doubles it), and the calls the feed's polls spent this Marketo day. A hash of times
 * and counts, no personal data, in its feed's checkpoint slot.
 *
 * The count belongs to one Marketo quota day: a save on a later day starts it again, in the same
 * script that adds to it, so two days' polls are never summed. The hash expires two days after its
 * last save, so a sync turned off leaves nothing behind for long.
 */

export interface MarketoPollState {
  /** Not before this (ms since the epoch, Redis's clock); absent: poll now. */
  readonly dueAtMs?: number
  /** The delay chosen after the last pass. */
  readonly delayMs?: number
  /** Calls the polls spent in `quotaDay`. */
  readonly pollCallsToday: number
}

/** KEYS: pace hash. ARGV: quota day, due at, delay, calls this pass spent, TTL ms. */
const SAVE = `
local counted = 0
if tonumber(redis.call('HGET', KEYS[1], 'day')) == tonumber(ARGV[1]) then
  counted = tonumber(redis.call('HGET', KEYS[1], 'calls')) or 0
end
redis.call('HSET', KEYS[1], 'day', ARGV[1], 'dueAt', ARGV[2], 'delayMs', ARGV[3], 'calls', counted + tonumber(ARGV[4]))
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return counted + tonumber(ARGV[4])
`

const TWO_DAYS_MS = 2 * 86_400_000

export class MarketoPollSchedule {
  readonly #redis: RedisClient
  readonly #key: string

  constructor (redis: RedisClient, prefix: string, feed: CheckpointName) {
    this.#redis = redis
    this.#key = syncFeedPollPaceKey(prefix, feed.direction, feed.table)
  }

  /** The feed's schedule; the calls count only when it was saved in `quotaDay`. */
  async load (quotaDay: number): Promise<MarketoPollState> {
    const [day, dueAt, delayMs, calls] = await this.#redis.hmget(this.#key, 'day', 'dueAt', 'delayMs', 'calls')
    return {
      ...(dueAt === null ? {} : { dueAtMs: Number(dueAt) }),
      ...(delayMs === null ? {} : { delayMs: Number(delayMs) }),
      pollCallsToday: Number(day) === quotaDay ? Number(calls ?? 0) : 0
    }
  }

  /** Saves the next due time and adds this pass's calls to the day's count; returns the new count. */
  async save (quotaDay: number, next: { readonly dueAtMs: number, readonly delayMs: number, readonly calls: number }): Promise<number> {
    return Number(await this.#redis.eval(SAVE, 1, this.#key, quotaDay, next.dueAtMs, next.delayMs, next.calls, TWO_DAYS_MS))
  }
}
