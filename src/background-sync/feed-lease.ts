import { randomUUID } from 'node:crypto'
import type { RedisClient } from '../queue/connections.ts'
import { syncFeedLeaseKey } from '../queue/redis-keys.ts'
import type { CheckpointName } from './checkpoints.ts'
import { RELEASE_TOKEN_LEASE, RENEW_TOKEN_LEASE } from '../queue/lease-scripts.ts'

/**
 * One pass per change feed at a time, across every worker (issue 12 §10: "safe with many workers").
 *
 * A BullMQ job scheduler adds the next job of a schedule when the current one becomes active, not
 * when it ends, so a pass that outlasts the poll interval overlaps the next one, in one worker or
 * across workers. Two overlapping passes load the same checkpoint and deliver the same page; the
 * checkpoint's version refuses the second save, but only after its writes, and for unlinked Dynamics
 * rows two concurrent create-or-update calls by email can create two Marketo persons. So a pass
 * takes its feed's lease before it loads the checkpoint and holds it until after the save:
 *
 * - taken with `SET key token NX PX ttl`, a random token per pass (Redis docs, SET: "the lock is
 *   removed only if the value matches"), so a pass can only renew or release its own lease;
 * - renewed every third of the TTL while the pass runs, by a script that extends it only while it
 *   still holds this pass's token;
 * - released in `finally` by a compare-and-delete script, so a pass that threw frees the feed at
 *   once, and a pass whose lease had already expired and been taken does not delete the new holder's;
 * - a holder that died (a killed process) stops renewing, and its lease expires after the TTL.
 *
 * A lease is a lock by time, and a paused process can outlive it: when a renewal finds the lease
 * gone, the pass's signal is aborted (FeedLeaseLostError) so it stops before delivering, and the
 * checkpoint's version stays the backstop for a pass already past that point.
 *
 * At shutdown (issue 13 §6) a pass the deadline would cut off would leave its lease to expire, and
 * its feed unread by every worker for the TTL. `handBack()` aborts the signal of every running pass
 * (FeedHandedBackError): each stops at its next safe point, before delivering, and frees its lease
 * in `finally`, so another worker's next pass of that feed runs at once; its cursor was not saved, so
 * that pass reads the same page again, nothing lost. A pass already delivering is not stopped (its
 * writes would be cut halfway) and ends as it would have. New passes are refused from then on.
 */

export class FeedLeaseLostError extends Error {
  readonly code = 'FEED_LEASE_LOST'
  constructor (readonly feed: CheckpointName) {
    super(`the lease of feed ${feed.direction}/${feed.table} expired while its pass ran, and another pass may hold it`)
    this.name = 'FeedLeaseLostError'
  }
}

/** The worker is shutting down: a running pass stopped before delivering, or a new one refused. */
export class FeedHandedBackError extends Error {
  readonly code = 'FEED_HANDED_BACK'
  constructor (readonly feed: CheckpointName) {
    super(`the pass of feed ${feed.direction}/${feed.table} was handed back: the worker is shutting down`)
    this.name = 'FeedHandedBackError'
  }
}

export type FeedLeaseOutcome<T> =
  | { readonly kind: 'ran', readonly value: T }
  | { readonly kind: 'skipped', readonly reason: 'another pass is running' }

export interface FeedLeaseOptions {
  /** How long a lease outlives its last renewal: how soon a dead holder's feed is taken over. */
  readonly ttlMs: number
  /** A third of the TTL by default: two renewals may fail before the lease is lost. */
  readonly renewEveryMs?: number
}

export class FeedLeases {
  readonly #ttlMs: number
  readonly #renewEveryMs: number
  /** The running passes' signals with the feed each holds, so `handBack()` can stop them all. */
  readonly #running = new Map<AbortController, CheckpointName>()
  #handedBack = false

  constructor (private readonly redis: RedisClient, private readonly prefix: string, options: FeedLeaseOptions) {
    this.#ttlMs = options.ttlMs
    this.#renewEveryMs = options.renewEveryMs ?? Math.max(1, Math.floor(options.ttlMs / 3))
  }

  /**
   * Runs `pass` holding the feed's lease, or answers `skipped` at once, without running it, when
   * another pass holds the lease. `signal` is aborted with FeedLeaseLostError if the lease is lost,
   * with FeedHandedBackError at `handBack()`; after `handBack()` this throws FeedHandedBackError.
   */
  async run<T> (feed: CheckpointName, pass: (signal: AbortSignal) => Promise<T>): Promise<FeedLeaseOutcome<T>> {
    if (this.#handedBack) throw new FeedHandedBackError(feed)
    const key = syncFeedLeaseKey(this.prefix, feed.direction, feed.table)
    const token = randomUUID()
    const taken = await this.redis.set(key, token, 'PX', this.#ttlMs, 'NX')
    if (taken !== 'OK') return { kind: 'skipped', reason: 'another pass is running' }

    const lost = new AbortController()
    this.#running.set(lost, feed)
    let timer: NodeJS.Timeout | undefined
    let stopped = false
    const renew = (): void => {
      timer = setTimeout(() => {
        this.redis.eval(RENEW_TOKEN_LEASE, 1, key, token, this.#ttlMs).then((renewed) => {
          if (stopped) return
          if (renewed === 1) renew()
          else lost.abort(new FeedLeaseLostError(feed))
        }, () => {
          // Redis unreachable for a moment: try again; if the lease expires meanwhile, the next
          // renewal finds it gone and aborts the pass.
          if (!stopped) renew()
        })
      }, this.#renewEveryMs)
    }
    renew()
    try {
      // Handed back while the lease was being taken: the pass never starts, and the lease is freed.
      if (this.#handedBack) throw new FeedHandedBackError(feed)
      return { kind: 'ran', value: await pass(lost.signal) }
    } finally {
      stopped = true
      this.#running.delete(lost)
      clearTimeout(timer)
      await this.redis.eval(RELEASE_TOKEN_LEASE, 1, key, token)
    }
  }

  /**
   * Shutdown: aborts every running pass's signal with FeedHandedBackError and refuses new passes.
   * Idempotent; the passes free their leases as they stop (see above).
   */
  handBack (): void {
    this.#handedBack = true
    for (const [controller, feed] of this.#running) controller.abort(new FeedHandedBackError(feed))
  }
}
