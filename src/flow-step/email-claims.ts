import { createHmac, createSecretKey, randomUUID, type KeyObject } from 'node:crypto'
import { setTimeout as delay } from 'node:timers/promises'
import type { RedisClient } from '../queue/connections.ts'
import type { RecordLink } from '../domain/record-link.ts'
import { emailClaimKeys } from '../queue/redis-keys.ts'
import { getMany } from '../queue/get-many.ts'

/**
 * "Two invocations for the same new email at the same moment create exactly one lead", across
 * any number of worker processes. Job ids cannot give that (two invocations are two jobs), and
 * Dataverse has no unique key on email by default (reference §1.7), so the creator of a record
 * for an email is chosen by an atomic claim in Redis:
 *
 *   <prefix>:email:{<hmac(email)>}:claim      SET NX PX, value `<invocationId>#<execution>`; kept
 *                                               alive by a heartbeat while its holder works, so it
 *                                               never lapses under a slow create, and lapses within
 *                                               one TTL when the holder dies
 *   <prefix>:email:{<hmac(email)>}:record     the record created (and by which invocation), kept for
 *                                               15 minutes so late arrivals that looked Dynamics up
 *                                               before it existed see it (short, so a record deleted in
 *                                               Dynamics afterwards is created anew later)
 *
 *   <prefix>:email:{<hmac(email)>}:claim-gen  bumped on every acquisition: a claimant whose look-up
 *                                               predates someone else's claim must look again, even
 *                                               if that claim has lapsed by the time it gets its own
 *
 * A holder checks, right before it creates, that the claim is still its own and no record was
 * remembered meanwhile. A record it created is remembered whatever happened to its claim. A
 * create whose answer never came (timeout, crash) leaves the claim to lapse instead of releasing
 * it: whoever claims next must look Dynamics up first.
 *
 * Emails are hashed with a key (HMAC-SHA256): keys show up in Redis tooling and logs, personal
 * data must not, and a plain SHA-256 of an email is reversed by hashing a list of known addresses.
 * Every worker must hold the same `keyHashSecret` (config `redis.keyHashSecret`), or their claims
 * for one email would not meet.
 * The digest is the keys' hash tag, so the scripts below, which take several of one email's
 * keys, run on a Redis Cluster too (src/queue/redis-keys.ts).
 */

const RECORD_MEMORY_SECONDS = 15 * 60

const GENERATION_MEMORY_SECONDS = 24 * 3600

/** Take a free claim and bump the email's generation in one step; answers the new generation, or 0. */
const ACQUIRE = `
if not redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then return 0 end
local generation = redis.call('incr', KEYS[2])
redis.call('expire', KEYS[2], ARGV[3])
return generation`

/** Renew only a claim that is still ours; 0 when it is not, or a record has been remembered since. */
const RENEW_IF_OWNER = `
if redis.call('get', KEYS[1]) ~= ARGV[1] or redis.call('exists', KEYS[2]) == 1 then return 0 end
return redis.call('pexpire', KEYS[1], ARGV[2])`

/**
 * Remember the record (if any) — a record that exists in Dynamics must be known even if our claim
 * lapsed meanwhile — and drop the claim if it is still ours.
 */
const RELEASE = `
if ARGV[2] ~= '' then redis.call('set', KEYS[2], ARGV[2], 'EX', ARGV[3]) end
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0`

export interface CreatedRecord extends RecordLink {
  /** The invocation whose job created it ('' when it was found, not created): its own retries report it as created. */
  readonly invocationId: string
}

export interface HeldClaim {
  readonly kind: 'claimed'
  /** Someone held the claim before us and may have created the record: look Dynamics up first. */
  readonly mustLookUpAgain: boolean
  /** True while the claim is ours; check right before creating. */
  confirm (): Promise<boolean>
  /**
   * Hand the claim back, remembering the record for late arrivals: `created` when this invocation
   * created it (its retries then report it created), not when it only found it.
   */
  release (record?: RecordLink, options?: { created: boolean }): Promise<void>
  /** Stop keeping the claim alive but leave it to lapse: the outcome of our create is unknown. */
  abandon (): void
}

export type ClaimResult = HeldClaim | { readonly kind: 'created-by-other', readonly record: CreatedRecord }

export interface EmailClaimSettings extends Partial<EmailClaimOptions> {
  /** The HMAC key of the email digests in key names; the same in every worker process. */
  readonly keyHashSecret: string
}

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
  readonly #keyHashKey: KeyObject

  constructor (private readonly redis: RedisClient, private readonly prefix: string, { keyHashSecret, ...options }: EmailClaimSettings) {
    if (keyHashSecret.length < 32) throw new RangeError('keyHashSecret must be at least 32 characters long')
    this.#keyHashKey = createSecretKey(Buffer.from(keyHashSecret, 'utf8'))
    this.#options = { claimTtlMs: 30_000, waitTimeoutMs: 150_000, pollIntervalMs: 25, maxPollIntervalMs: 1_000, ...options }
  }

  #keys (email: string): ClaimKeys {
    const digest = createHmac('sha256', this.#keyHashKey).update(email).digest('hex')
    return emailClaimKeys(this.prefix, digest)
  }

  /**
   * Each email's claim generation now: take it before looking Dynamics up, and hand it to
   * `claim()`, which then knows whether anyone claimed (and maybe created) since the look-up.
   *
   * A claim held right now counts as taken after the look-up: its holder may be creating the record
   * while we look, and if its create then times out (or it dies) the claim lapses unseen, and our
   * own later claim would otherwise come one generation after the one we read and trust a look-up
   * that raced the holder's create. The generations are read before the claims, so a claim taken
   * between the two reads is seen either way.
   */
  async generations (emails: readonly string[]): Promise<Map<string, number>> {
    if (emails.length === 0) return new Map()
    const keys = emails.map((email) => this.#keys(email))
    const values = await getMany(this.redis, keys.map((k) => k.generation))
    const holders = await getMany(this.redis, keys.map((k) => k.claim))
    return new Map(emails.map((email, index) => {
      const generation = Number(values[index] ?? 0)
      return [email, holders[index] === null || holders[index] === undefined ? generation : generation - 1]
    }))
  }

  /**
   * Of the emails a look-up `found` in Dynamics, those this invocation created on an earlier try
   * that never heard back (a timeout, a crash): its claim is still there, or its record is
   * remembered. Lapsing claims are released as after a create. Two MGETs for the whole batch (on
   * a cluster, one GET a key: src/queue/get-many.ts).
   */
  async settleOwnCreations (found: ReadonlyMap<string, RecordLink>, invocationId: string): Promise<Set<string>> {
    const emails = [...found.keys()]
    if (emails.length === 0) return new Set()
    const keys = emails.map((email) => this.#keys(email))
    const [holders, records] = await Promise.all([
      getMany(this.redis, keys.map((k) => k.claim)),
      getMany(this.redis, keys.map((k) => k.record))
    ])
    const own = new Set<string>()
    for (const [index, email] of emails.entries()) {
      const holder = holders[index]
      const record = parseRecord(records[index])
      if (holder?.startsWith(`${invocationId}#`) === true) {
        const link = found.get(email)!
        await this.redis.eval(RELEASE, 2, keys[index]!.claim, keys[index]!.record, holder, JSON.stringify({ ...link, invocationId }), RECORD_MEMORY_SECONDS)
        own.add(email)
      } else if (record?.invocationId === invocationId) {
        own.add(email)
      }
    }
    return own
  }

  /**
   * `lookedUpAtGeneration`: the email's generation taken before the look-up that found nothing
   * (see `generations`). Anyone who claimed since may have created the record.
   */
  async claim (email: string, invocationId: string, lookedUpAtGeneration: number): Promise<ClaimResult> {
    const keys = this.#keys(email)
    const owner = `${invocationId}#${randomUUID()}`
    const deadline = Date.now() + this.#options.waitTimeoutMs
    let pause = this.#options.pollIntervalMs
    for (;;) {
      const created = parseRecord(await this.redis.get(keys.record))
      if (created !== undefined) return { kind: 'created-by-other', record: created }
      const generation = Number(await this.redis.eval(ACQUIRE, 2, keys.claim, keys.generation, owner, this.#options.claimTtlMs, GENERATION_MEMORY_SECONDS))
      if (generation > 0) {
        try {
          // Re-read: the holder before us may have recorded its record just before releasing.
          const raced = parseRecord(await this.redis.get(keys.record))
          if (raced !== undefined) {
            await this.redis.eval(RELEASE, 2, keys.claim, keys.record, owner, '', 0)
            return { kind: 'created-by-other', record: raced }
          }
        } catch (error) {
          // Do not leave a claim nobody keeps alive or releases.
          await this.redis.eval(RELEASE, 2, keys.claim, keys.record, owner, '', 0).catch(() => undefined)
          throw error
        }
        return this.#held(keys, owner, invocationId, generation - 1 !== lookedUpAtGeneration)
      }
      if (Date.now() > deadline) throw new EmailClaimTimeoutError()
      // Polling with backoff, not a sleep-as-synchronisation: each turn reads the holder's result.
      await delay(pause)
      pause = Math.min(pause * 2, this.#options.maxPollIntervalMs)
    }
  }

  #held (keys: ClaimKeys, owner: string, invocationId: string, mustLookUpAgain: boolean): HeldClaim {
    const ttl = this.#options.claimTtlMs
    const renew = async () => await this.redis.eval(RENEW_IF_OWNER, 2, keys.claim, keys.record, owner, ttl) === 1
    const heartbeat = setInterval(() => { renew().catch(() => undefined) }, Math.max(ttl / 3, 10))
    heartbeat.unref()
    return {
      kind: 'claimed',
      mustLookUpAgain,
      confirm: renew,
      release: async (record, options) => {
        clearInterval(heartbeat)
        const remembered = record === undefined ? '' : JSON.stringify({ ...record, invocationId: options?.created === true ? invocationId : '' })
        await this.redis.eval(RELEASE, 2, keys.claim, keys.record, owner, remembered, RECORD_MEMORY_SECONDS)
      },
      abandon: () => { clearInterval(heartbeat) }
    }
  }
}

interface ClaimKeys { readonly claim: string, readonly record: string, readonly generation: string }

function parseRecord (value: string | null | undefined): CreatedRecord | undefined {
  return value === null || value === undefined ? undefined : JSON.parse(value) as CreatedRecord
}
