import type { RedisClient } from '../queue/connections.ts'
import { recordLinkKey, syncPairMetaKey, syncPairStateKey } from '../queue/redis-keys.ts'
import type { SyncTable } from '../sync/field-mapping.ts'
import type { LastSyncedState } from '../sync/field-merge.ts'

/**
 * What the background sync remembers per Dynamics record, in Redis: which Marketo person it is linked
 * to (read from the links the flow step also writes, src/links/record-link-store.ts) and the pair's
 * last-synced state — a keyed fingerprint per mapped field (src/sync/field-fingerprint.ts), never a
 * value, so Redis holds no personal data (issue 12 §5).
 *
 *   <prefix>:{pair:<lead|contact>:<id>}       hash { <marketoField>: <fingerprint> }
 *   <prefix>:{pair:<lead|contact>:<id>}:meta  hash { <direction>:at, <direction>:outcome,
 *                                             <direction>:code, <direction>:syncedAt }
 *
 * The meta record answers the admin API's "why didn't it sync?" (src/admin/explain.ts): when each
 * direction last decided the pair, what it decided (an outcome code, and a refusal's code), and when
 * it last saved the pair's state. Times and codes only. It is written for linked pairs only (the
 * passes note nothing for an unlinked record), in the state's MULTI, and dropped with the state, so
 * it is bounded by the live pairs as the state is.
 */

export type PairDirection = 'dynamics-to-marketo' | 'marketo-to-dynamics'
export const PAIR_DIRECTIONS: readonly PairDirection[] = ['dynamics-to-marketo', 'marketo-to-dynamics']

/**
 * What a direction last decided about a pair: written (values carried), unchanged (nothing to carry:
 * an echo of our own write, or both sides agreeing), filtered (the sync filter is No), refused (the
 * other side refused it, or a value had no option: parked with `code`).
 */
export type PairSyncOutcome = 'written' | 'unchanged' | 'filtered' | 'refused'

export interface PairOutcomeNote {
  readonly outcome: PairSyncOutcome
  /** A refusal's code (Dynamics', Marketo's or ours); never its message, which may quote a value. */
  readonly code?: string
}

/** How a save is recorded in the pairs' meta records: the direction, and per record an outcome other than `written`. */
export interface PairSyncNote {
  readonly direction: PairDirection
  /** Outcomes by record id; a record saved without one is `written`, one not saved gets only its outcome. */
  readonly outcomes?: ReadonlyMap<string, PairOutcomeNote>
  readonly at?: Date
}

export interface PairDirectionRecord {
  readonly at: Date
  readonly outcome: PairSyncOutcome
  readonly code?: string
  /** When this direction last saved the pair's state (merged it); absent when it never did since the pair began. */
  readonly syncedAt?: Date
}

export type PairSyncRecord = Partial<Record<PairDirection, PairDirectionRecord>>
export class PairStateStore {
  constructor (private readonly redis: RedisClient, private readonly prefix: string) {}

  /** The Marketo person linked to each record, for the records that have one. */
  async linkedPersons (table: SyncTable, recordIds: readonly string[]): Promise<Map<string, number>> {
    const linked = new Map<string, number>()
    if (recordIds.length === 0) return linked
    // The record ends of the links share the {links} tag, so one MGET reads them on a cluster too.
    const replies = await this.redis.mget(...recordIds.map((id) => recordLinkKey(this.prefix, table, id)))
    recordIds.forEach((id, index) => {
      const marketoId = Number(replies[index])
      if (replies[index] !== null && Number.isInteger(marketoId)) linked.set(id, marketoId)
    })
    return linked
  }

  /** Each record's last-synced state; a record never synced has an empty one. Read one key a command: each pair is its own tag. */
  async load (table: SyncTable, recordIds: readonly string[]): Promise<Map<string, LastSyncedState>> {
    const states = new Map<string, LastSyncedState>()
    if (recordIds.length === 0) return states
    const keys = recordIds.map((id) => syncPairStateKey(this.prefix, table, id))
    let replies: Array<Record<string, string>>
    if ('nodes' in this.redis) {
      // A Cluster refuses a pipeline whose keys live on different nodes, and each pair is its own tag.
      replies = await Promise.all(keys.map(async (key) => await this.redis.hgetall(key)))
    } else {
      const pipeline = this.redis.pipeline()
      for (const key of keys) pipeline.hgetall(key)
      replies = ((await pipeline.exec()) ?? []).map(([error, reply]) => {
        if (error !== null) throw error
        return reply as Record<string, string>
      })
    }
    recordIds.forEach((id, index) => { states.set(id, replies[index] ?? {}) })
    return states
  }

  /** Drops the records' states and sync records: a deleted record, or a lead whose person now follows its contact, is no pair any more. */
  async forget (table: SyncTable, recordIds: readonly string[]): Promise<void> {
    // One DEL per pair: its two keys share its tag, and each pair is its own.
    await Promise.all(recordIds.map(async (id) => await this.redis.del(syncPairStateKey(this.prefix, table, id), syncPairMetaKey(this.prefix, table, id))))
  }

  /** A pair's sync record, each direction's last decision (src/admin/explain.ts). */
  async syncRecord (table: SyncTable, recordId: string): Promise<PairSyncRecord> {
    return pairSyncRecord(await this.redis.hgetall(syncPairMetaKey(this.prefix, table, recordId)))
  }

  /**
   * Saves records' new states. A record with an entry in `loaded` (the state this pass loaded and
   * merged from) is patched: only the fields whose fingerprint this pass changed are set, and only the
   * fields it dropped are removed. The two directions run as separate passes that may load the same
   * pair at once (a Dynamics edit and a Marketo edit of one person within a poll): replacing the
   * whole state would let the later save undo the earlier one's fields, and a disjoint-field edit
   * would then look unsynced again. Patched, each pass touches only the fields it decided; two
   * passes deciding the same field is a real collision, and the later save wins, which the next
   * change of that field settles like any other. A record without a loaded entry (a new pair) has
   * its state replaced: whatever an old pair of that record left there is not this pair's.
   */
  async save (table: SyncTable, states: ReadonlyMap<string, LastSyncedState>, loaded?: ReadonlyMap<string, LastSyncedState>, note?: PairSyncNote): Promise<void> {
    const noted = note === undefined ? [] : [...note.outcomes ?? []].filter(([id]) => !states.has(id))
    if (states.size === 0 && noted.length === 0) return
    const at = String((note?.at ?? new Date()).getTime())
    // One MULTI per pair (each pair is its own tag; its meta key shares it): a reader never sees a
    // state half written, nor a sync record that disagrees with it.
    await Promise.all([...states].map(async ([id, state]) => {
      const key = syncPairStateKey(this.prefix, table, id)
      const base = loaded?.get(id)
      const transaction = this.redis.multi()
      let changed = true
      if (base === undefined) {
        transaction.del(key)
        if (Object.keys(state).length > 0) transaction.hset(key, state)
      } else {
        const patch = statePatch(base, state)
        changed = patch.removed.length > 0 || Object.keys(patch.set).length > 0
        if (patch.removed.length > 0) transaction.hdel(key, ...patch.removed)
        if (Object.keys(patch.set).length > 0) transaction.hset(key, patch.set)
      }
      if (note !== undefined) this.#noteOutcome(transaction, table, id, note.direction, note.outcomes?.get(id) ?? { outcome: 'written' }, at, true)
      else if (!changed) return
      await transaction.exec()
    }))
    // Outcomes that save no state (filtered, refused, an echo skipped): the sync record alone.
    await Promise.all(noted.map(async ([id, outcome]) => {
      const transaction = this.redis.multi()
      this.#noteOutcome(transaction, table, id, note!.direction, outcome, at, false)
      await transaction.exec()
    }))
  }

  #noteOutcome (transaction: ReturnType<RedisClient['multi']>, table: SyncTable, recordId: string, direction: PairDirection, note: PairOutcomeNote, at: string, synced: boolean): void {
    const key = syncPairMetaKey(this.prefix, table, recordId)
    transaction.hset(key, {
      [`${direction}:at`]: at,
      [`${direction}:outcome`]: note.outcome,
      ...(note.code === undefined ? {} : { [`${direction}:code`]: note.code }),
      ...(synced ? { [`${direction}:syncedAt`]: at } : {})
    })
    if (note.code === undefined) transaction.hdel(key, `${direction}:code`)
  }
}

/** Pure: the fields `next` sets or changes against `base`, and the fields it no longer has. */
export function statePatch (base: LastSyncedState, next: LastSyncedState): { set: Record<string, string>, removed: string[] } {
  const set: Record<string, string> = {}
  for (const [field, fingerprint] of Object.entries(next)) {
    if (base[field] !== fingerprint) set[field] = fingerprint
  }
  const removed = Object.keys(base).filter((field) => !Object.hasOwn(next, field))
  return { set, removed }
}

const OUTCOMES: ReadonlySet<string> = new Set<PairSyncOutcome>(['written', 'unchanged', 'filtered', 'refused'])

/** Pure: the sync record from its hash; a field that is not what it should be is left out. */
export function pairSyncRecord (hash: Readonly<Record<string, string>>): PairSyncRecord {
  const record: PairSyncRecord = {}
  for (const direction of PAIR_DIRECTIONS) {
    const at = Number(hash[`${direction}:at`])
    const outcome = hash[`${direction}:outcome`]
    if (!Number.isFinite(at) || outcome === undefined || !OUTCOMES.has(outcome)) continue
    const syncedAt = Number(hash[`${direction}:syncedAt`])
    const code = hash[`${direction}:code`]
    record[direction] = {
      at: new Date(at),
      outcome: outcome as PairSyncOutcome,
      ...(code === undefined ? {} : { code }),
      ...(Number.isFinite(syncedAt) ? { syncedAt: new Date(syncedAt) } : {})
    }
  }
  return record
}
