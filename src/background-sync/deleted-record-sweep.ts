import type { Redis } from 'ioredis'
import type { Logger } from 'pino'
import type { DataverseClient } from '../dynamics/dataverse-client.ts'
import { TABLES } from '../dynamics/table-changes.ts'
import { isWatermarkCursor } from '../dynamics/table-watermark-read.ts'
import type { RedisClient } from '../queue/connections.ts'
import { recordLinkKey, syncDeletedRecordSweepKey } from '../queue/redis-keys.ts'
import type { SyncTable } from '../sync/field-mapping.ts'
import type { CheckpointStore } from './checkpoints.ts'
import type { DynamicsChangePassOutcome } from './dynamics-change-pass.ts'
import type { FeedLeases } from './feed-lease.ts'

/**
 * Deletes that Dataverse change tracking cannot show (issue 12 §1, §7), found by asking Dataverse
 * which of a table's linked records still exist:
 *
 * - a row deleted while a delta link was expired: Dataverse answers ExpiredVersionStamp and the
 *   table is read in full (dataverse-web-api-and-msal.md §2), and a full read lists the rows that
 *   exist, never the ones deleted meanwhile, so no `$deletedEntity` ever comes for it;
 * - a table read by its `modifiedon` watermark (change tracking off, table-watermark-read.ts): a
 *   deleted row simply stops appearing.
 *
 * "Never delete from an incomplete read" (conventions; sync-engines.md): this is no scan of the
 * table but a look-up of known ids by primary key, whose answer is complete for those ids, and a
 * missing record only sets the person's "Microsoft is Deleted" flag, as a `$deletedEntity` does —
 * through the very delivery code (`deliver`, deliverDynamicsPage with `deletedIds`), so links,
 * flags and logs stay one behaviour. It relies on the service's user reading every linked record:
 * a record hidden from it by Dataverse security would look deleted.
 *
 * When: (a) once after the full read that followed an expired delta link has caught up; (b) every
 * SYNC_DELETED_RECORD_SWEEP_INTERVAL_MS for a table on the watermark; (c) never otherwise, for it
 * costs Dataverse requests: one per 50 links (IDS_PER_READ), so 2,000 requests per 100,000 links.
 *
 * How: a sweep walks the table's record links (`<p>:{links}:record:<table>:<id>`, record-link-
 * store.ts) with SCAN … MATCH … COUNT, one bounded step per change-pass job (about LINKS_PER_STEP
 * links, 20 Dataverse requests), holding the table's feed lease like a pass, and saves the SCAN
 * cursor after the step's deletes were delivered. A worker stopped mid-sweep leaves the cursor, and
 * the next step, in any worker, goes on from it; a step done twice flags the same persons again,
 * which changes nothing. SCAN returns every key present for the whole walk at least once (Redis,
 * SCAN guarantees); a link made during the walk may be missed, and its record is new anyway.
 *
 *   <prefix>:{checkpoint:dynamics-to-marketo:<table>}:deleted-sweep
 *     hash { awaitingFullRead, reason, scanCursor, lastStartedAt, lastCompletedAt }
 */

export type SweepReason = 'delta-token-expired' | 'watermark-period'

export interface SweepState {
  /** Dataverse said the delta link expired and the table is being read in full: a sweep is due once that read caught up. */
  readonly awaitingFullRead: boolean
  /** The sweep under way, and its SCAN cursor ('0' before its first step). */
  readonly running: { readonly reason: SweepReason, readonly scanCursor: string } | undefined
  /** When the last sweep began (ms since the epoch): a watermark table's next one is due an interval later. */
  readonly lastStartedAt: number | undefined
}

export type SweepDecision =
  | { readonly kind: 'idle' }
  | { readonly kind: 'continue' }
  | { readonly kind: 'start', readonly reason: SweepReason }

export interface SweepDecisionInput {
  readonly state: SweepState
  /** The last outcome of the change-pass job that just ran for the table. */
  readonly lastOutcome: DynamicsChangePassOutcome | undefined
  /** The table's checkpoint is on a `modifiedon` watermark (its change tracking is off). */
  readonly watermarkMode: boolean
  readonly now: number
  readonly intervalMs: number
}

/**
 * Pure: whether the job that just read a table's changes also takes a sweep step. A full read
 * has caught up when a job ends on a caught-up page after the expiry was noted: every page of the
 * full read comes first (the dropped cursor starts it), and a job breaks at the first caught-up page.
 */
export function decideSweep (input: SweepDecisionInput): SweepDecision {
  const { state, lastOutcome } = input
  if (state.running !== undefined) return { kind: 'continue' }
  if (state.awaitingFullRead && lastOutcome?.kind === 'advanced' && lastOutcome.caughtUp) return { kind: 'start', reason: 'delta-token-expired' }
  if (input.watermarkMode && (state.lastStartedAt === undefined || input.now - state.lastStartedAt >= input.intervalMs)) return { kind: 'start', reason: 'watermark-period' }
  return { kind: 'idle' }
}

/** Whether a pass outcome is the drop of an expired delta link, after which a sweep will be due. */
export function isExpiredDeltaReset (outcome: DynamicsChangePassOutcome): boolean {
  // Also a switch back from the modifiedon watermark to change tracking: deletes made since the last
  // periodic sweep were never seen, and once the table is tracked again no periodic sweep runs.
  return outcome.kind === 'reset' && (outcome.reason === 'delta-token-expired' || outcome.reason === 'change-tracking-on')
}

/** Ids per `$filter` request: 50 GUID comparisons keep the URL far below Dataverse's 32 KB limit (as marketo-change-pass.ts reads). */
export const IDS_PER_READ = 50
/** Links looked up per step: 20 Dataverse requests, a second or two, so the table's next pass is not held up. */
export const LINKS_PER_STEP = 1_000
/** SCAN COUNT per call, and calls per step: a step examines at most 20,000 keys of the database, links or not. */
const SCAN_COUNT = 1_000
const MAX_SCANS_PER_STEP = 20

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

export class DeletedRecordSweepError extends Error {
  readonly code = 'DELETED_RECORD_SWEEP_NO_LINKS_NODE'
  constructor (readonly slot: number) {
    super(`no master of the Redis Cluster is known to hold slot ${slot}, where the record links live`)
    this.name = 'DeletedRecordSweepError'
  }
}

export interface SweepStepOutcome {
  readonly reason: SweepReason
  /** Linked records looked up in Dataverse by this step. */
  readonly checked: number
  /** Of those, the ones Dataverse no longer has. */
  readonly missing: number
  /** Persons whose deleted flag the delivery set. */
  readonly flagged: number
  /** The walk reached its end: the sweep is over. */
  readonly done: boolean
}

export interface DeletedRecordSweepDeps {
  readonly redis: RedisClient
  readonly prefix: string
  readonly dataverse: Pick<DataverseClient, 'retrieveMultiple'>
  readonly checkpoints: Pick<CheckpointStore, 'load'>
  readonly leases: FeedLeases
  /** SYNC_DELETED_RECORD_SWEEP_INTERVAL_MS: a watermark table's sweep period. */
  readonly intervalMs: number
  readonly logger: Logger
  readonly now?: () => number
  readonly linksPerStep?: number
  readonly scanCount?: number
}

/** Hands missing records to the Dynamics → Marketo delivery as `$deletedEntity`s would be; answers how many persons it flagged. */
export type DeliverDeletedRecords = (table: SyncTable, deletedIds: readonly string[]) => Promise<{ readonly flaggedDeleted: number }>

export class DeletedRecordSweep {
  readonly #deps: DeletedRecordSweepDeps
  readonly #now: () => number

  constructor (deps: DeletedRecordSweepDeps) {
    this.#deps = deps
    this.#now = deps.now ?? Date.now
  }

  #key (table: SyncTable): string {
    return syncDeletedRecordSweepKey(this.#deps.prefix, table)
  }

  /** Notes that the table's delta link expired and a full read begins: a sweep is due once it caught up. */
  async awaitFullRead (table: SyncTable): Promise<void> {
    await this.#deps.redis.hset(this.#key(table), 'awaitingFullRead', '1')
  }

  async load (table: SyncTable): Promise<SweepState> {
    const [awaiting, reason, scanCursor, lastStartedAt] = await this.#deps.redis.hmget(this.#key(table), 'awaitingFullRead', 'reason', 'scanCursor', 'lastStartedAt')
    return {
      awaitingFullRead: awaiting === '1',
      running: (reason === 'delta-token-expired' || reason === 'watermark-period') && typeof scanCursor === 'string' ? { reason, scanCursor } : undefined,
      lastStartedAt: lastStartedAt === null || lastStartedAt === undefined ? undefined : Number(lastStartedAt)
    }
  }

  /**
   * Called after each change-pass job of the table with its last outcome: starts a sweep when one
   * is due and takes one step of the sweep under way. Answers the step's outcome, or undefined when
   * there was nothing to do or another pass of the table held its lease.
   */
  async afterPasses (table: SyncTable, lastOutcome: DynamicsChangePassOutcome | undefined, deliver: DeliverDeletedRecords): Promise<SweepStepOutcome | undefined> {
    const state = await this.load(table)
    // Only a table without a sweep under way needs its mode: one Redis read less per job otherwise.
    const watermarkMode = state.running === undefined && isWatermark((await this.#deps.checkpoints.load({ direction: 'dynamics-to-marketo', table })).cursor)
    const decision = decideSweep({ state, lastOutcome, watermarkMode, now: this.#now(), intervalMs: this.#deps.intervalMs })
    if (decision.kind === 'idle') return undefined
    const leased = await this.#deps.leases.run({ direction: 'dynamics-to-marketo', table }, async (leaseLost) => {
      if (decision.kind === 'start') await this.#start(table, decision.reason)
      return await this.#step(table, leaseLost, deliver)
    })
    return leased.kind === 'ran' ? leased.value : undefined
  }

  async #start (table: SyncTable, reason: SweepReason): Promise<void> {
    const transaction = this.#deps.redis.multi().hset(this.#key(table), 'reason', reason, 'scanCursor', '0', 'lastStartedAt', String(this.#now()))
    if (reason === 'delta-token-expired') transaction.hdel(this.#key(table), 'awaitingFullRead')
    await transaction.exec()
    this.#deps.logger.info({ table, reason }, 'a sweep of the table\'s linked records for deletes change tracking cannot show begins')
  }

  async #step (table: SyncTable, leaseLost: AbortSignal, deliver: DeliverDeletedRecords): Promise<SweepStepOutcome | undefined> {
    // Read again under the lease: another worker's step may have moved the cursor since.
    const running = (await this.load(table)).running
    if (running === undefined) return undefined
    const { ids, cursor } = await this.#linkedRecordIds(table, running.scanCursor)
    const existing = await this.#existingRecordIds(table, ids)
    const missing = ids.filter((id) => !existing.has(id.toLowerCase()))
    // A lease lost while reading: another step may be walking the same links now, so this one stops before writing.
    leaseLost.throwIfAborted()
    const flagged = missing.length === 0 ? 0 : (await deliver(table, missing)).flaggedDeleted
    const done = cursor === '0'
    // Saved after the delivery it covers: a step stopped before this is taken again, at least once.
    if (done) await this.#deps.redis.multi().hdel(this.#key(table), 'reason', 'scanCursor').hset(this.#key(table), 'lastCompletedAt', String(this.#now())).exec()
    else await this.#deps.redis.hset(this.#key(table), 'scanCursor', cursor)
    const outcome: SweepStepOutcome = { reason: running.reason, checked: ids.length, missing: missing.length, flagged, done }
    // Counts only; the record ids are in the delivery's own logs of what it flagged.
    if (missing.length > 0 || done) this.#deps.logger.info({ table, ...outcome }, 'deleted-record sweep step')
    return outcome
  }

  /**
   * The next record ids of the table's links from `scanCursor`, about `linksPerStep` of them, and the
   * cursor after them ('0' at the end). On a Redis Cluster every link shares the {links} tag (redis-
   * keys.ts), so they all live on the master holding that slot, and the walk is that node's SCAN.
   */
  async #linkedRecordIds (table: SyncTable, scanCursor: string): Promise<{ ids: string[], cursor: string }> {
    const keyOfNoRecord = recordLinkKey(this.#deps.prefix, table, '')
    const node = await linksNode(this.#deps.redis, keyOfNoRecord)
    const match = `${escapeGlob(keyOfNoRecord)}*`
    const ids = new Set<string>()
    let cursor = scanCursor
    const wanted = this.#deps.linksPerStep ?? LINKS_PER_STEP
    for (let scans = 0; scans < MAX_SCANS_PER_STEP; scans++) {
      const [next, keys] = await node.scan(cursor, 'MATCH', match, 'COUNT', this.#deps.scanCount ?? SCAN_COUNT)
      cursor = next
      for (const key of keys) {
        const id = key.slice(keyOfNoRecord.length)
        // Only a GUID goes into the $filter: a malformed key must not reach the query.
        if (GUID.test(id)) ids.add(id)
        else this.#deps.logger.warn({ table }, 'a record link key that names no GUID is left out of the deleted-record sweep')
      }
      if (cursor === '0' || ids.size >= wanted) break
    }
    return { ids: [...ids], cursor }
  }

  /** The ids Dataverse still has, lower-cased: one `$filter` on the primary key per 50 ids. */
  async #existingRecordIds (table: SyncTable, ids: readonly string[]): Promise<Set<string>> {
    const { entitySet, primaryKey } = TABLES[table]
    const existing = new Set<string>()
    for (let start = 0; start < ids.length; start += IDS_PER_READ) {
      const chunk = ids.slice(start, start + IDS_PER_READ)
      // GUIDs unquoted, as OData writes them; each was checked against the GUID form above.
      const rows = await this.#deps.dataverse.retrieveMultiple<Record<string, unknown>>(entitySet, {
        select: [primaryKey],
        filter: chunk.map((id) => `${primaryKey} eq ${id}`).join(' or ')
      })
      for (const row of rows) existing.add(String(row[primaryKey]).toLowerCase())
    }
    return existing
  }
}

function isWatermark (cursor: string | undefined): boolean {
  return cursor !== undefined && isWatermarkCursor(cursor)
}

/** SCAN's MATCH is a glob: a prefix holding `*`, `?`, `[` or `\` must match itself only. */
function escapeGlob (text: string): string {
  return text.replace(/[*?[\]\\]/g, (character) => `\\${character}`)
}

/** The connection whose SCAN walks the links: the client itself, or the cluster master that holds the {links} slot. */
async function linksNode (redis: RedisClient, linkKey: string): Promise<Redis> {
  if (!('nodes' in redis)) return redis
  const slot = await redis.cluster('KEYSLOT', linkKey)
  const owner = redis.slots[slot]?.[0]
  const node = redis.nodes('master').find((candidate) => `${candidate.options.host}:${candidate.options.port}` === owner)
  if (node === undefined) throw new DeletedRecordSweepError(slot)
  return node
}
