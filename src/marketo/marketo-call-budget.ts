import { randomUUID } from 'node:crypto'
import { setTimeout as delay } from 'node:timers/promises'
import type { Redis, Cluster } from 'ioredis'
import { marketoCallBudgetKeys } from '../queue/redis-keys.ts'
import { MarketoBudgetSpentError, MarketoBudgetWaitTimeoutError } from './marketo-errors.ts'
import { RENEW_SLOT_LEASE } from '../queue/lease-scripts.ts'

/**
 * The Marketo REST budget every process of ours shares, kept in Redis.
 *
 * A Marketo instance allows 100 calls in any 20 s, 10 calls in flight and (most subscriptions)
 * 50,000 calls a day, and those limits belong to the instance: every integration the customer runs
 * spends from them (reference marketo-rest-and-ssfs.md §2.4). Each of our processes counting for
 * itself would let N workers spend N times the limit, so the counts live in Redis, changed by one
 * Lua script at a time, and the defaults stay below Marketo's own to leave room for the customer's
 * other integrations:
 *
 * - 80 calls per 20 s (Marketo 100): a fifth of the window stays for the rest. Adobe advises 50 per
 *   integration (§2.4 [BP]); an instance with several busy integrations should set that.
 * - 8 calls in flight (Marketo 10): two concurrent slots stay for the rest.
 * - 5,000 calls a day (10 % of 50,000), counted per Marketo day: the quota resets at 12:00 AM CST
 *   (§2.3 code 607, §2.4), which is 06:00 UTC all year round (CST, not CDT, is what Adobe writes).
 *
 * Identity calls are not charged: "not counted towards API call limit" (§2.1 [IDS]).
 *
 * An in-flight slot is a lease with an expiry, renewed while its call runs: a process that dies
 * mid-call stops renewing, and its slot comes back when the lease runs out instead of never.
 * Times are Redis's own (`TIME`), so processes whose clocks disagree still share one window.
 */

export interface MarketoCallBudgetOptions {
  /** REDIS_KEY_PREFIX; the budget's keys share one hash tag (src/queue/redis-keys.ts). */
  readonly keyPrefix: string
  /** Calls admitted in any `windowMs`; default 80 (Marketo's instance limit is 100). */
  readonly callsPerWindow?: number
  /** Marketo's window is 20 s. */
  readonly windowMs?: number
  /** Calls in flight across every process; default 8 (Marketo's limit is 10). */
  readonly maxConcurrent?: number
  /** Calls per Marketo day; default 5,000 (10 % of the usual 50,000). */
  readonly dailyBudget?: number
  /**
   * How long a slot outlives a holder that stopped renewing it. Renewed every third of it while
   * the call runs, so it bounds only how long a dead process's slot stays taken.
   */
  readonly leaseMs?: number
  /** The longest `acquire` waits for a window or concurrency slot before MARKETO_BUDGET_WAIT_TIMEOUT. */
  readonly maxWaitMs?: number
  /** Backoff between polls while waiting: from `minPollMs`, doubling, up to `maxPollMs`. */
  readonly minPollMs?: number
  readonly maxPollMs?: number
}

export const DEFAULT_MARKETO_CALL_BUDGET = Object.freeze({
  callsPerWindow: 80,
  windowMs: 20_000,
  maxConcurrent: 8,
  dailyBudget: 5_000,
  leaseMs: 15_000,
  maxWaitMs: 60_000,
  minPollMs: 25,
  maxPollMs: 1_000
})

/** What `today()` reads: times in ms since the epoch, by Redis's clock. */
export interface MarketoBudgetToday {
  readonly now: number
  /** The Marketo quota day `now` is in (marketoQuotaDay). */
  readonly quotaDay: number
  /** Calls left in today's budget; 0 once spent (our count, or Marketo's 607). */
  readonly remaining: number
  /** The next 12:00 AM CST, when Marketo's quota and our count start again. */
  readonly resetsAt: number
}

/** One admitted call: release it once Marketo has answered (or the call failed). */
export interface MarketoCallSlot {
  release (): Promise<void>
}

/** What MarketoRestClient needs of a budget; MarketoCallBudget is the Redis one. */
export interface MarketoCallGate {
  acquire (): Promise<MarketoCallSlot>
  /** Marketo answered 607: nothing is left today for anyone, whatever our own count says. */
  markSpentUntilReset (): Promise<void>
}

/** Marketo's quota day: midnight CST (UTC−6) to midnight CST (reference §2.3 607, §2.4). */
const QUOTA_DAY_OFFSET_MS = -6 * 3_600_000
const DAY_MS = 86_400_000

/** The Marketo quota day a moment belongs to (days since 1970-01-01 CST). */
export function marketoQuotaDay (atMs: number): number {
  return Math.floor((atMs + QUOTA_DAY_OFFSET_MS) / DAY_MS)
}

/** When the quota day holding `atMs` ends: the next 12:00 AM CST. */
export function nextMarketoQuotaReset (atMs: number): Date {
  return new Date((marketoQuotaDay(atMs) + 1) * DAY_MS - QUOTA_DAY_OFFSET_MS)
}

/**
 * How long to wait before asking again: exponential from `minPollMs` to `maxPollMs`, never past
 * the moment the script says a window slot frees (`hintMs`), with jitter so waiting processes do
 * not all ask at the same instant.
 */
export function budgetPollDelay (attempt: number, hintMs: number | undefined, options: { minPollMs: number, maxPollMs: number }, random: () => number = Math.random): number {
  const backoff = Math.min(options.maxPollMs, options.minPollMs * 2 ** Math.min(attempt, 20))
  const bounded = hintMs === undefined ? backoff : Math.min(backoff, Math.max(hintMs, 1))
  return Math.max(1, Math.round(bounded * (0.5 + random() / 2)))
}

/**
 * KEYS: window (zset call id → admitted ms), leases (zset call id → lease expiry ms), daily (hash
 * day, count). ARGV: call id, windowMs, callsPerWindow, maxConcurrent, dailyBudget, leaseMs, day offset ms.
 * Returns { outcome, now, detail }: admitted (detail = calls today), spent (detail = calls today),
 * busy (no concurrency slot), rate (detail = ms until the oldest call leaves the window).
 */
const ACQUIRE = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local windowMs = tonumber(ARGV[2])
local leaseMs = tonumber(ARGV[6])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - windowMs)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local day = math.floor((now + tonumber(ARGV[7])) / 86400000)
local count = 0
local daily = redis.call('HMGET', KEYS[3], 'day', 'count')
if tonumber(daily[1]) == day then count = tonumber(daily[2]) or 0 end
if count >= tonumber(ARGV[5]) then return { 'spent', now, count } end
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) then return { 'busy', now, 0 } end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return { 'rate', now, tonumber(oldest[2]) + windowMs - now }
end
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('PEXPIRE', KEYS[1], windowMs)
redis.call('ZADD', KEYS[2], now + leaseMs, ARGV[1])
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[2], tonumber(last[2]))
redis.call('HSET', KEYS[3], 'day', day, 'count', count + 1)
redis.call('PEXPIRE', KEYS[3], 2 * 86400000)
return { 'admitted', now, count + 1 }
`

/** KEYS: daily. ARGV: day offset ms. Returns { now, calls counted today }. */
const COUNT_TODAY = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local day = math.floor((now + tonumber(ARGV[1])) / 86400000)
local daily = redis.call('HMGET', KEYS[1], 'day', 'count')
if tonumber(daily[1]) == day then return { now, tonumber(daily[2]) or 0 } end
return { now, 0 }
`

/** KEYS: daily. ARGV: day offset ms, dailyBudget. Today's count becomes the whole budget. */
const SPEND_TODAY = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local day = math.floor((now + tonumber(ARGV[1])) / 86400000)
redis.call('HSET', KEYS[1], 'day', day, 'count', ARGV[2])
redis.call('PEXPIRE', KEYS[1], 2 * 86400000)
return now
`

export class MarketoCallBudget implements MarketoCallGate {
  readonly #redis: Redis | Cluster
  readonly #keys: ReturnType<typeof marketoCallBudgetKeys>
  readonly #settings: Required<Omit<MarketoCallBudgetOptions, 'keyPrefix'>>

  constructor (redis: Redis | Cluster, options: MarketoCallBudgetOptions) {
    this.#redis = redis
    this.#keys = marketoCallBudgetKeys(options.keyPrefix)
    const { keyPrefix: _, ...settings } = options
    this.#settings = { ...DEFAULT_MARKETO_CALL_BUDGET, ...stripUndefined(settings) }
  }

  get dailyBudget (): number {
    return this.#settings.dailyBudget
  }

  /**
   * Waits (bounded by `maxWaitMs`) for a window and a concurrency slot. Throws
   * MarketoBudgetSpentError at once when today's budget is spent: waiting would take hours, so the
   * caller plans around it (reschedules after `resetsAt`).
   */
  async acquire (): Promise<MarketoCallSlot> {
    const callId = randomUUID()
    const { windowMs, callsPerWindow, maxConcurrent, dailyBudget, leaseMs, maxWaitMs } = this.#settings
    const startedAt = Date.now()
    for (let attempt = 0; ; attempt++) {
      const [outcome, now, detail] = await this.#redis.eval(
        ACQUIRE, 3, this.#keys.window, this.#keys.leases, this.#keys.daily,
        callId, windowMs, callsPerWindow, maxConcurrent, dailyBudget, leaseMs, QUOTA_DAY_OFFSET_MS
      ) as [string, number, number]
      if (outcome === 'admitted') return this.#heldSlot(callId)
      if (outcome === 'spent') throw new MarketoBudgetSpentError(dailyBudget, nextMarketoQuotaReset(now))
      const waited = Date.now() - startedAt
      if (waited >= maxWaitMs) throw new MarketoBudgetWaitTimeoutError(waited, outcome === 'busy' ? 'concurrency' : 'window')
      const pause = budgetPollDelay(attempt, outcome === 'rate' ? detail : undefined, this.#settings)
      await delay(Math.min(pause, maxWaitMs - waited))
    }
  }

  /** Calls left in today's budget, for pacing the poll interval; 0 once spent. */
  async remainingToday (): Promise<number> {
    return (await this.today()).remaining
  }

  /**
   * Today's budget as Redis sees it, for pacing the Marketo poll (src/background-sync/
   * marketo-poll-pace.ts): Redis's clock, so every process agrees on the day and on the reset.
   * No slot is taken and nothing is counted.
   */
  async today (): Promise<MarketoBudgetToday> {
    const [now, count] = await this.#redis.eval(COUNT_TODAY, 1, this.#keys.daily, QUOTA_DAY_OFFSET_MS) as [number, number]
    return { now, quotaDay: marketoQuotaDay(now), remaining: Math.max(0, this.#settings.dailyBudget - count), resetsAt: nextMarketoQuotaReset(now).getTime() }
  }

  async markSpentUntilReset (): Promise<void> {
    await this.#redis.eval(SPEND_TODAY, 1, this.#keys.daily, QUOTA_DAY_OFFSET_MS, this.#settings.dailyBudget)
  }

  #heldSlot (callId: string): MarketoCallSlot {
    const { leaseMs } = this.#settings
    // A failed renewal (Redis away for a moment) leaves the lease to expire: at worst one more
    // call runs at once than the limit, never a slot lost for good.
    const renewal = setInterval(() => {
      this.#redis.eval(RENEW_SLOT_LEASE, 1, this.#keys.leases, callId, leaseMs).catch(() => undefined)
    }, Math.max(1, Math.floor(leaseMs / 3)))
    renewal.unref()
    let released: Promise<void> | undefined
    return {
      release: async () => {
        released ??= (async () => {
          clearInterval(renewal)
          await this.#redis.zrem(this.#keys.leases, callId)
        })()
        await released
      }
    }
  }
}

function stripUndefined<T extends object> (value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>
}
