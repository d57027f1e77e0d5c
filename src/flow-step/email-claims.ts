import { createHash } from 'node:crypto'
import { setTimeout as delay } from 'node:timers/promises'
import type { Redis } from 'ioredis'
import type { RecordLink } from '../links/record-link-store.ts'

/**
 * "Two invocations for the same new email at the same moment create exactly one lead", across
 * any number of worker processes. Job ids cannot give that (two invocations are two jobs), and
 * Dataverse has no unique key on email by default (reference §1.7), so the creator of a record
 * for an email is chosen by an atomic claim in Redis:
 *
 *   <prefix>:email-claim:<sha256(email)>   SET NX PX — held while one worker creates
 *   <prefix>:email-record:<sha256(email)>  the record it created, kept for 15 minutes so late
 *                                          arrivals that looked Dynamics up before it existed
 *                                          see it (short, so a record deleted in Dynamics
 *                                          afterwards is created anew by a later invocation)
 *
 * The claim's value is the claiming invocation's id: when that invocation's job is retried after
 * an ambiguous create (a timeout — the record may exist), it finds its own claim and is told to
 * look Dynamics up again before creating.
 *
 * Emails are hashed: keys show up in Redis tooling and logs, personal data must not.
 */

const RECORD_MEMORY_SECONDS = 15 * 60

const RELEASE_IF_OWNER = `
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0`

export type ClaimResult =
  /**
   * `mustLookUpAgain`: someone held the claim before and may have created the record.
   * `heldByEarlierTry`: that someone was an earlier try of this very invocation (a create that
   * timed out), so a record found now is this invocation's own creation.
   */
  | { readonly kind: 'claimed'; readonly mustLookUpAgain: boolean; readonly heldByEarlierTry: boolean; release (created?: RecordLink): Promise<void> }
  | { readonly kind: 'created-by-other'; readonly link: RecordLink }

export interface EmailClaimOptions {
  /** How long a claim outlives a crashed holder. Longer than one create with its retries. */
  readonly claimTtlMs: number
  /** How long a waiter waits for the holder before giving up (and failing that person, retryably). */
  readonly waitTimeoutMs: number
  readonly pollIntervalMs: number
}

export class EmailClaimTimeoutError extends Error {
  readonly code = 'EMAIL_CLAIM_TIMEOUT'
  constructor () {
    super('another worker has been creating this person for too long')
    this.name = 'EmailClaimTimeoutError'
  }
}

export class EmailClaims {
  readonly #options: EmailClaimOptions

  constructor (private readonly redis: Redis, private readonly prefix: string, options: Partial<EmailClaimOptions> = {}) {
    this.#options = { claimTtlMs: 120_000, waitTimeoutMs: 150_000, pollIntervalMs: 50, ...options }
  }

  #keys (email: string): { claim: string; record: string } {
    const digest = createHash('sha256').update(email).digest('hex')
    return { claim: `${this.prefix}:email-claim:${digest}`, record: `${this.prefix}:email-record:${digest}` }
  }

  /**
   * Of the emails a look-up `found` in Dynamics, those whose claim `owner` still holds: an earlier
   * try of this invocation created their record but never heard back (a timeout, a crash). Those
   * claims are released as after a create — the record remembered for late arrivals — and the
   * emails answered, so the person is reported created, not existed. One MGET for the whole batch.
   */
  async settleOwnCreations (found: ReadonlyMap<string, RecordLink>, owner: string): Promise<Set<string>> {
    const emails = [...found.keys()]
    if (emails.length === 0) return new Set()
    const holders = await this.redis.mget(emails.map((email) => this.#keys(email).claim))
    const own = new Set(emails.filter((_, index) => holders[index] === owner))
    for (const email of own) {
      const keys = this.#keys(email)
      await this.redis.set(keys.record, JSON.stringify(found.get(email)), 'EX', RECORD_MEMORY_SECONDS)
      await this.redis.eval(RELEASE_IF_OWNER, 1, keys.claim, owner)
    }
    return own
  }

  async claim (email: string, owner: string): Promise<ClaimResult> {
    const keys = this.#keys(email)
    const deadline = Date.now() + this.#options.waitTimeoutMs
    let waited = false
    let heldByEarlierTry = false
    for (;;) {
      const created = await this.redis.get(keys.record)
      if (created !== null) return { kind: 'created-by-other', link: JSON.parse(created) as RecordLink }
      const acquired = await this.redis.set(keys.claim, owner, 'PX', this.#options.claimTtlMs, 'NX')
      const ownedBefore = acquired !== 'OK' && await this.redis.get(keys.claim) === owner
      if (ownedBefore) {
        waited = true
        heldByEarlierTry = true
      }
      if (acquired === 'OK' || ownedBefore) {
        // Re-read: the holder before us may have recorded its record just before releasing.
        const raced = await this.redis.get(keys.record)
        if (raced !== null) {
          await this.redis.eval(RELEASE_IF_OWNER, 1, keys.claim, owner)
          return { kind: 'created-by-other', link: JSON.parse(raced) as RecordLink }
        }
        return {
          kind: 'claimed',
          mustLookUpAgain: waited,
          heldByEarlierTry,
          release: async (createdLink?: RecordLink) => {
            if (createdLink !== undefined) await this.redis.set(keys.record, JSON.stringify(createdLink), 'EX', RECORD_MEMORY_SECONDS)
            await this.redis.eval(RELEASE_IF_OWNER, 1, keys.claim, owner)
          }
        }
      }
      if (Date.now() > deadline) throw new EmailClaimTimeoutError()
      waited = true
      // Polling, not a sleep-as-synchronisation: the holder's result is read from Redis each turn.
      await delay(this.#options.pollIntervalMs)
    }
  }
}
