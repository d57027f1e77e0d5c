import { randomUUID } from 'node:crypto'
import { setTimeout as delay } from 'node:timers/promises'
import type { Redis, Cluster } from 'ioredis'
import { dataverseConcurrencyLeasesKey } from '../queue/redis-keys.ts'
import { DataverseUnavailableError } from './dataverse-errors.ts'
import { RENEW_SLOT_LEASE } from '../queue/lease-scripts.ts'

/**
 * Dataverse requests in flight across every process of the service, bounded in Redis.
 *
 * Dataverse allows 52 concurrent requests per user (reference dataverse-web-api-and-msal.md §5,
 * `0x80072326`), and every worker calls it as the same application user, so a limit per process
 * lets N workers send N times it. Each request holds a lease: a member of one sorted set scored by
 * its expiry, taken by a Lua script that first drops expired leases and then admits only while
 * fewer than `maxConcurrent` are left (one script: two processes cannot both take the last slot).
 * The lease is renewed while the request runs and removed when it ends; a process that dies
 * mid-request stops renewing, and its slots come back when their leases run out, not never.
 * Times are Redis's own (`TIME`), so processes whose clocks disagree still agree on expiry.
 *
 * A request that waits longer than `maxWaitMs` for a slot is not sent and fails as
 * DataverseUnavailableError, which the callers already treat as "Dynamics did not answer: retry".
 */

export interface SharedConcurrencyLimitOptions {
  /** REDIS_KEY_PREFIX (src/queue/redis-keys.ts). */
  readonly keyPrefix: string
  /** Requests in flight across every process. */
  readonly maxConcurrent: number
  /** How long a slot outlives a holder that stopped renewing it; renewed every third of it. */
  readonly leaseMs?: number
  /** The longest a request waits for a slot. */
  readonly maxWaitMs?: number
  /** Backoff between asks while waiting: from `minPollMs`, doubling, up to `maxPollMs`, jittered. */
  readonly minPollMs?: number
  readonly maxPollMs?: number
}

export const DEFAULT_SHARED_CONCURRENCY = Object.freeze({
  leaseMs: 15_000,
  maxWaitMs: 60_000,
  minPollMs: 5,
  maxPollMs: 250
})

/** What DataverseClient needs of a limit: ConcurrencyLimit (one process) and SharedConcurrencyLimit both fit. */
export interface ConcurrencyGate {
  run<T> (task: () => Promise<T>): Promise<T>
}

/** KEYS: leases. ARGV: request id, maxConcurrent, leaseMs. Returns 1 when admitted, else 0. */
const ACQUIRE = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], tonumber(last[2]))
return 1
`

export class SharedConcurrencyLimit implements ConcurrencyGate {
  readonly #redis: Redis | Cluster
  readonly #key: string
  readonly #settings: Required<Omit<SharedConcurrencyLimitOptions, 'keyPrefix'>>

  constructor (redis: Redis | Cluster, options: SharedConcurrencyLimitOptions) {
    if (!Number.isInteger(options.maxConcurrent) || options.maxConcurrent < 1) throw new RangeError('maxConcurrent must be a positive integer')
    this.#redis = redis
    this.#key = dataverseConcurrencyLeasesKey(options.keyPrefix)
    this.#settings = {
      maxConcurrent: options.maxConcurrent,
      leaseMs: options.leaseMs ?? DEFAULT_SHARED_CONCURRENCY.leaseMs,
      maxWaitMs: options.maxWaitMs ?? DEFAULT_SHARED_CONCURRENCY.maxWaitMs,
      minPollMs: options.minPollMs ?? DEFAULT_SHARED_CONCURRENCY.minPollMs,
      maxPollMs: options.maxPollMs ?? DEFAULT_SHARED_CONCURRENCY.maxPollMs
    }
  }

  async run<T> (task: () => Promise<T>): Promise<T> {
    const release = await this.#acquire()
    try {
      return await task()
    } finally {
      await release()
    }
  }

  async #acquire (): Promise<() => Promise<void>> {
    const requestId = randomUUID()
    const { maxConcurrent, leaseMs, maxWaitMs, minPollMs, maxPollMs } = this.#settings
    const startedAt = Date.now()
    for (let attempt = 0; ; attempt++) {
      const admitted = await this.#redis.eval(ACQUIRE, 1, this.#key, requestId, maxConcurrent, leaseMs)
      if (admitted === 1) return this.#held(requestId)
      const waited = Date.now() - startedAt
      if (waited >= maxWaitMs) {
        throw new DataverseUnavailableError(`no Dataverse request slot came free in ${waited} ms (${maxConcurrent} in flight across the service)`)
      }
      // Jittered, so waiting processes do not all ask at the same instant.
      const backoff = Math.min(maxPollMs, minPollMs * 2 ** Math.min(attempt, 20))
      await delay(Math.min(maxWaitMs - waited, Math.max(1, Math.round(backoff * (0.5 + Math.random() / 2)))))
    }
  }

  #held (requestId: string): () => Promise<void> {
    const { leaseMs } = this.#settings
    // A failed renewal (Redis away for a moment) leaves the lease to expire: at worst one more
    // request runs than the limit for a while, never a slot lost for good.
    const renewal = setInterval(() => {
      this.#redis.eval(RENEW_SLOT_LEASE, 1, this.#key, requestId, leaseMs).catch(() => undefined)
    }, Math.max(1, Math.floor(leaseMs / 3)))
    renewal.unref()
    return async () => {
      clearInterval(renewal)
      // A release Redis does not take leaves the lease to expire; the request's own outcome stands.
      await this.#redis.zrem(this.#key, requestId).catch(() => undefined)
    }
  }
}
