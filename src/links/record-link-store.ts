import type { RedisClient } from '../queue/connections.ts'
import type { RecordLink } from '../domain/record-link.ts'
import { isRecordType } from '../domain/record-type.ts'
import { convertedLeadKey, personLinkKey, recordLinkKey } from '../queue/redis-keys.ts'

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
/** Attempts of `set` while other writers keep changing the same person's link. */
const MAX_SET_ATTEMPTS = 5

/**
 * KEYS: person hash, new record key, previous record key (the new one when there is none).
 * ARGV: the previous type and id as read ('' when none), the new type and id, linkedAt, marketoId.
 * The previous record's link is removed only while it still names this person: another writer
 * may have linked that record to someone else since.
 */
const RELINK = `
local current = redis.call('HMGET', KEYS[1], 'type', 'id')
if (current[1] or '') ~= ARGV[1] or (current[2] or '') ~= ARGV[2] then return 0 end
if KEYS[3] ~= KEYS[2] and redis.call('GET', KEYS[3]) == ARGV[6] then redis.call('DEL', KEYS[3]) end
redis.call('HSET', KEYS[1], 'type', ARGV[3], 'id', ARGV[4], 'linkedAt', ARGV[5])
redis.call('SET', KEYS[2], ARGV[6])
return 1
`

/** KEYS: person hash, record key. ARGV: the record's type and id, the person's marketoId. */
const UNLINK = `
local current = redis.call('HMGET', KEYS[1], 'type', 'id')
if current[1] == ARGV[1] and current[2] == ARGV[2] then redis.call('DEL', KEYS[1]) end
if redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('DEL', KEYS[2]) end
return 1
`

/** The person's link kept changing under `set`; the caller's job fails and is retried. */
export class RecordLinkContendedError extends Error {
  readonly code = 'RECORD_LINK_CONTENDED'
  constructor (readonly marketoId: number) {
    super(`the link of Marketo person ${marketoId} changed ${MAX_SET_ATTEMPTS} times while it was being set`)
    this.name = 'RecordLinkContendedError'
  }
}

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

  /**
   * Links the person to the record. A person relinked to another record (a lead qualified into a
   * contact, a duplicate resolved) has its previous record's link removed in the same step, so no
   * record is left pointing at a person that now follows another one: two records would then both
   * sync to the one person. The previous link is read first, then the script applies the change
   * only if the person's link is still the one read (else it is read again): every key the script
   * touches is named to Redis, which a Redis Cluster requires, and all share the {links} tag.
   */
  async set (marketoId: number, link: RecordLink): Promise<void> {
    const personKey = this.#personKey(marketoId)
    for (let attempt = 0; attempt < MAX_SET_ATTEMPTS; attempt++) {
      const [type, id] = await this.redis.hmget(personKey, 'type', 'id')
      const previous = isRecordType(type) && typeof id === 'string' ? { type, id } : undefined
      const previousKey = previous === undefined ? this.#recordKey(link) : this.#recordKey(previous)
      const applied = await this.redis.eval(RELINK, 3, personKey, this.#recordKey(link), previousKey,
        type ?? '', id ?? '', link.type, link.id, new Date().toISOString(), String(marketoId))
      if (applied === 1) return
    }
    throw new RecordLinkContendedError(marketoId)
  }

  /** Notes that a lead was qualified into `contactId`, which took its person over (see convertedLeadKey). */
  async markConverted (leadId: string, contactId: string): Promise<void> {
    await this.redis.set(convertedLeadKey(this.prefix, leadId.toLowerCase()), contactId.toLowerCase())
  }

  /** Which of these leads were qualified into a contact that took their person over. */
  async convertedLeads (leadIds: readonly string[]): Promise<Set<string>> {
    if (leadIds.length === 0) return new Set()
    // One tag ({links}): one MGET, on a cluster too.
    const replies = await this.redis.mget(...leadIds.map((id) => convertedLeadKey(this.prefix, id.toLowerCase())))
    return new Set(leadIds.filter((_, index) => replies[index] !== null))
  }

  async forgetConverted (leadIds: readonly string[]): Promise<void> {
    if (leadIds.length === 0) return
    await this.redis.del(...leadIds.map((id) => convertedLeadKey(this.prefix, id.toLowerCase())))
  }

  /**
   * Unlinks the person from the record: each end is removed only while it still names the other, so
   * a person relinked meanwhile (the flow step made it a new lead) or a record linked to someone else
   * keeps its new link. One script: both ends share the {links} tag.
   */
  async remove (marketoId: number, link: RecordLink): Promise<void> {
    await this.redis.eval(UNLINK, 2, this.#personKey(marketoId), this.#recordKey(link), link.type, link.id, String(marketoId))
  }
}
