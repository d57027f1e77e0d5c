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

  /** Replaces a record's state: a field no longer in it (unmapped, or left to the other direction) is dropped. */
  async save (table: SyncTable, states: ReadonlyMap<string, LastSyncedState>): Promise<void> {
    if (states.size === 0) return
    // DEL then HSET in one MULTI per key (each pair is its own tag): a reader never sees a state half replaced.
    await Promise.all([...states].map(async ([id, state]) => {
      const key = syncPairStateKey(this.prefix, table, id)
      const transaction = this.redis.multi().del(key)
      if (Object.keys(state).length > 0) transaction.hset(key, state)
      await transaction.exec()
    }))
  }
}
