import { createHash, randomUUID } from 'node:crypto'
import { setTimeout as delay } from 'node:timers/promises'
import type { Redis } from 'ioredis'
import type { RecordLink } from '../links/record-link-store.ts'

/**
 * "Two invocations for the same new email at the same moment create exactly one lead", across
 * any number of worker processes. Job ids cannot give that (two invocations are two jobs), and
 * Dataverse has no unique key on email by default (reference §1.7), so the creator of a record
 * for an email is chosen by an atomic claim in Redis:
 *
 *   <prefix>:email-claim:<sha256(email)>   SET NX PX, value `<invocationId>#<execution>`; kept
 *                                          alive by a heartbeat while its holder works, so it
 *                                          never lapses under a slow create, and lapses within
 *                                          one TTL when the holder dies
 *   <prefix>:email-record:<sha256(email)>  the record created (and by which invocation), kept for
 *                                          15 minutes so late arrivals that looked Dynamics up
 *                                          before it existed see it (short, so a record deleted in
 *                                          Dynamics afterwards is created anew later)
 *
 * A holder checks the claim is still its own right before it creates, and releases it atomically
 * with recording what it created. A create whose answer never came (timeout, crash) leaves the
 * claim to lapse instead of releasing it: whoever claims next must look Dynamics up first.
 *
 * Emails are hashed: keys show up in Redis tooling and logs, personal data must not.
 */

const RECORD_MEMORY_SECONDS = 15 * 60

/** Renew only a claim that is still ours. */
const RENEW_IF_OWNER = `
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0`

/** Release a claim that is still ours and, in the same step, remember the record it led to. */
const RELEASE_IF_OWNER = `
if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] ~= '' then redis.call('set', KEYS[2], ARGV[2], 'EX', ARGV[3]) end
return redis.call('del', KEYS[1])`

export interface CreatedRecord extends RecordLink {
  /** The invocation whose job created it: its own retries report it as created, not existed. */
  readonly invocationId: string
}

export interface HeldClaim {
  readonly kind: 'claimed'
  /** Someone held the claim before us and may have created the record: look Dynamics up first. */
  readonly mustLookUpAgain: boolean
  /** True while the claim is ours; check right before creating. */
  confirm (): Promise<boolean>
  /** Hand the claim back, recording the record created (or found) for it, if any. */
  release (record?: RecordLink): Promise<void>
  /** Stop keeping the claim alive but leave it to lapse: the outcome of our create is unknown. */
  abandon (): void
}

export type ClaimResult = HeldClaim | { readonly kind: 'created-by-other', readonly record: CreatedRecord }

export interface EmailClaimOptions {
  /** How long a claim outlives a holder that stopped renewing it (crashed, killed). */
  readonly claimTtlMs: number
  /** How long a waiter waits for the holder before giving up (and failing that person, retryably). */
  readonly waitTimeoutMs: number
  /** First and longest pause between looks at a held claim (doubling in between). */
  readonly pollIntervalMs: number
  readonly maxPollIntervalMs: number
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
    this.#options = { claimTtlMs: 30_000, waitTimeoutMs: 150_000, pollIntervalMs: 25, maxPollIntervalMs: 1_000, ...options }
  }

  #keys (email: string): { claim: string, record: string } {
    const digest = createHash('sha256').update(email).digest('hex')
    return { claim: `${this.prefix}:email-claim:${digest}`, record: `${this.prefix}:email-record:${digest}` }
  }

  /**
   * Of the emails a look-up `found` in Dynamics, those this invocation created on an earlier try
   * that never heard back (a timeout, a crash): its claim is still there, or its record is
   * remembered. Lapsing claims are released as after a create. Two MGETs for the whole batch.
   */
  async settleOwnCreations (found: ReadonlyMap<string, RecordLink>, invocationId: string): Promise<Set<string>> {
    const emails = [...found.keys()]
    if (emails.length === 0) return new Set()
    const keys = emails.map((email) => this.#keys(email))
    const [holders, records] = await Promise.all([
      this.redis.mget(keys.map((k) => k.claim)),
      this.redis.mget(keys.map((k) => k.record))
    ])
    const own = new Set<string>()
    for (const [index, email] of emails.entries()) {
      const holder = holders[index]
      const record = parseRecord(records[index])
      if (holder?.startsWith(`${invocationId}#`) === true) {
        const link = found.get(email)!
        await this.redis.eval(RELEASE_IF_OWNER, 2, keys[index]!.claim, keys[index]!.record, holder, JSON.stringify({ ...link, invocationId }), RECORD_MEMORY_SECONDS)
        own.add(email)
      } else if (record?.invocationId === invocationId) {
        own.add(email)
      }
    }
    return own
  }

  async claim (email: string, invocationId: string): Promise<ClaimResult> {
    const keys = this.#keys(email)
    const owner = `${invocationId}#${randomUUID()}`
    const deadline = Date.now() + this.#options.waitTimeoutMs
    let waited = false
    let pause = this.#options.pollIntervalMs
    for (;;) {
      const created = parseRecord(await this.redis.get(keys.record))
      if (created !== undefined) return { kind: 'created-by-other', record: created }
      if (await this.redis.set(keys.claim, owner, 'PX', this.#options.claimTtlMs, 'NX') === 'OK') {
        // Re-read: the holder before us may have recorded its record just before releasing.
        const raced = parseRecord(await this.redis.get(keys.record))
        if (raced !== undefined) {
          await this.redis.eval(RELEASE_IF_OWNER, 2, keys.claim, keys.record, owner, '', 0)
          return { kind: 'created-by-other', record: raced }
        }
        return this.#held(keys, owner, invocationId, waited)
      }
      if (Date.now() > deadline) throw new EmailClaimTimeoutError()
      waited = true
      // Polling with backoff, not a sleep-as-synchronisation: each turn reads the holder's result.
      await delay(pause)
      pause = Math.min(pause * 2, this.#options.maxPollIntervalMs)
    }
  }

  #held (keys: { claim: string, record: string }, owner: string, invocationId: string, mustLookUpAgain: boolean): HeldClaim {
    const ttl = this.#options.claimTtlMs
    const renew = async () => await this.redis.eval(RENEW_IF_OWNER, 1, keys.claim, owner, ttl) === 1
    const heartbeat = setInterval(() => { renew().catch(() => undefined) }, Math.max(ttl / 3, 10))
    heartbeat.unref()
    return {
      kind: 'claimed',
      mustLookUpAgain,
      confirm: renew,
      release: async (record) => {
        clearInterval(heartbeat)
        const remembered = record === undefined ? '' : JSON.stringify({ ...record, invocationId })
        await this.redis.eval(RELEASE_IF_OWNER, 2, keys.claim, keys.record, owner, remembered, RECORD_MEMORY_SECONDS)
      },
      abandon: () => { clearInterval(heartbeat) }
    }
  }
}

function parseRecord (value: string | null | undefined): CreatedRecord | undefined {
  return value === null || value === undefined ? undefined : JSON.parse(value) as CreatedRecord
}
