import { randomUUID } from 'node:crypto'
import type { RedisClient } from '../queue/connections.ts'
import { metricsLeaderLeaseKey } from '../queue/redis-keys.ts'
import { RELEASE_TOKEN_LEASE, RENEW_TOKEN_LEASE } from '../queue/lease-scripts.ts'

/**
 * Which one process exports the cluster-wide gauges (queue depths, backlog, lag, budget, parked):
 * a Prometheus query summing a gauge over every worker must count each fact once, so exactly one
 * process exports them and the others export no sample. The house's lease (src/background-sync/
 * feed-lease.ts): `SET NX PX` with a random token, renewed every third of the TTL by a script that
 * extends it only while it holds the token, released by compare-and-delete on close. A dead
 * leader's lease lapses after the TTL and the next process to try takes it.
 *
 * A process counts itself leader only until its last successful take or renewal plus two thirds of
 * the TTL, so after a pause (a stalled event loop) it stops exporting before another can take over:
 * two exporters at once would need a clock running more than half again as fast as Redis's.
 */

export interface MetricsLeaderOptions {
  readonly ttlMs: number
}

export class MetricsLeader {
  readonly #key: string
  readonly #token = randomUUID()
  readonly #ttlMs: number
  #heldUntil = 0
  #timer: NodeJS.Timeout | undefined
  #stopped = false

  constructor (private readonly redis: RedisClient, prefix: string, { ttlMs }: MetricsLeaderOptions) {
    this.#key = metricsLeaderLeaseKey(prefix)
    this.#ttlMs = ttlMs
  }

  get isLeader (): boolean {
    return Date.now() < this.#heldUntil
  }

  /** Tries at once, then every third of the TTL: to take the lease when free, to renew it when held. */
  start (): void {
    const tick = (): void => {
      void this.#tryHold().finally(() => {
        if (!this.#stopped) this.#timer = setTimeout(tick, Math.max(1, Math.floor(this.#ttlMs / 3))).unref()
      })
    }
    tick()
  }

  async #tryHold (): Promise<void> {
    const startedAt = Date.now()
    try {
      const held = this.isLeader
        ? await this.redis.eval(RENEW_TOKEN_LEASE, 1, this.#key, this.#token, this.#ttlMs) === 1
        : await this.redis.set(this.#key, this.#token, 'PX', this.#ttlMs, 'NX') === 'OK'
      this.#heldUntil = held && !this.#stopped ? startedAt + Math.floor(this.#ttlMs * 2 / 3) : 0
    } catch {
      // Redis unreachable: the lease may lapse meanwhile; `isLeader` turns false on its own.
    }
  }

  /** Stops trying and hands the lease back, so another process exports at once, not after the TTL. */
  async close (): Promise<void> {
    this.#stopped = true
    clearTimeout(this.#timer)
    const wasLeader = this.isLeader
    this.#heldUntil = 0
    if (wasLeader) await this.redis.eval(RELEASE_TOKEN_LEASE, 1, this.#key, this.#token).catch(() => undefined)
  }
}
