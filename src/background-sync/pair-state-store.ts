import type { RedisClient } from '../queue/connections.ts'
import { recordLinkKey, syncPairStateKey } from '../queue/redis-keys.ts'
import type { SyncTable } from '../sync/field-mapping.ts'
import type { LastSyncedState } from '../sync/field-merge.ts'

/**
 * What the background sync remembers per Dynamics record, in Redis: which Marketo person it is linked
 * to (read from the links the flow step also writes, src/links/record-link-store.ts) and the pair's
 * last-synced state — a keyed fingerprint per mapped field (src/sync/field-fingerprint.ts), never a
 * value, so Redis holds no personal data (issue 12 §5).
 *
 *   <prefix>:{pair:<lead|contact>:<id>}  hash { <marketoField>: <fingerprint> }
 */
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

  /** Drops the records' states: a deleted record, or a lead whose person now follows its contact, is no pair any more. */
  async forget (table: SyncTable, recordIds: readonly string[]): Promise<void> {
    // One DEL per key: each pair is its own tag.
    await Promise.all(recordIds.map(async (id) => await this.redis.del(syncPairStateKey(this.prefix, table, id))))
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
  async save (table: SyncTable, states: ReadonlyMap<string, LastSyncedState>, loaded?: ReadonlyMap<string, LastSyncedState>): Promise<void> {
    if (states.size === 0) return
    // One MULTI per key (each pair is its own tag): a reader never sees a state half written.
    await Promise.all([...states].map(async ([id, state]) => {
      const key = syncPairStateKey(this.prefix, table, id)
      const base = loaded?.get(id)
      const transaction = this.redis.multi()
      if (base === undefined) {
        transaction.del(key)
        if (Object.keys(state).length > 0) transaction.hset(key, state)
      } else {
        const patch = statePatch(base, state)
        if (patch.removed.length === 0 && Object.keys(patch.set).length === 0) return
        if (patch.removed.length > 0) transaction.hdel(key, ...patch.removed)
        if (Object.keys(patch.set).length > 0) transaction.hset(key, patch.set)
      }
      await transaction.exec()
    }))
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
