import type { RedisClient } from '../queue/connections.ts'
import type { RecordLink } from '../domain/record-link.ts'
import { isRecordType } from '../domain/record-type.ts'
import { personLinkKey, recordLinkKey } from '../queue/redis-keys.ts'

/**
 * The person ⇄ record link: which Dynamics lead or contact a Marketo person is. The native sync
 * identifies people by CRM record id, not email (reference marketo-native-dynamics-sync.md §4),
 * and so do we; the background sync (a later issue) reads and writes the same keys.
 *
 *   <prefix>:{links}:person:<marketoId>          hash {type, id, linkedAt}
 *   <prefix>:{links}:record:<lead|contact>:<id>  string marketoId
 *
 * Both ends are written in one MULTI, so they share a hash tag (src/queue/redis-keys.ts): a
 * Redis Cluster refuses a transaction over keys in different slots.
 */
export class RecordLinkStore {
  constructor (private readonly redis: RedisClient, private readonly prefix: string) {}

  #personKey (marketoId: number): string {
    return personLinkKey(this.prefix, marketoId)
  }

  #recordKey (link: RecordLink): string {
    return recordLinkKey(this.prefix, link.type.toLowerCase(), link.id)
  }

  async getMany (marketoIds: readonly number[]): Promise<Map<number, RecordLink>> {
    const links = new Map<number, RecordLink>()
    if (marketoIds.length === 0) return links
    const pipeline = this.redis.pipeline()
    for (const id of marketoIds) pipeline.hmget(this.#personKey(id), 'type', 'id')
    const replies = await pipeline.exec() ?? []
    marketoIds.forEach((marketoId, index) => {
      const [type, id] = (replies[index]?.[1] ?? []) as Array<string | null>
      if (isRecordType(type) && typeof id === 'string') links.set(marketoId, { type, id })
    })
    return links
  }

  async set (marketoId: number, link: RecordLink): Promise<void> {
    await this.redis.multi()
      .hset(this.#personKey(marketoId), { type: link.type, id: link.id, linkedAt: new Date().toISOString() })
      .set(this.#recordKey(link), String(marketoId))
      .exec()
  }

  async remove (marketoId: number, link: RecordLink): Promise<void> {
    await this.redis.multi().del(this.#personKey(marketoId)).del(this.#recordKey(link)).exec()
  }
}
