import type { RedisClient } from '../queue/connections.ts'
import { parkedChangeKeys } from '../queue/redis-keys.ts'
import type { SyncTable } from '../sync/field-mapping.ts'

/**
 * Changes the background sync could not apply because the other side refused them (issue 12 §9):
 * parked with their reason, so a refused record is neither retried forever (the feed's checkpoint
 * advances past it) nor dropped (an operator lists, retries or discards it; parked-change-retry.ts).
 * One entry per refused pair: the same record refused again updates its entry (attempts + 1, the
 * newest code), and a later write of that record that covers the parked fields clears it.
 *
 *   <prefix>:{parked-changes}:index       sorted set { <id> → first parked, epoch ms }
 *   <prefix>:{parked-changes}:entry:<id>  hash (below)
 *
 * What an entry holds: ids (the Dynamics record, the Marketo person), the names of the fields and
 * columns involved, Dynamics' error code and HTTP status, dates and counts. Never a value, and
 * never Dynamics' message: a Dataverse validation message quotes the refused value ("… the length
 * of the 'jobtitle' attribute … 'Inventor of the very …'"), the person's data. Sealing it (as the
 * flow step seals callback credentials, src/crypto/sealed-box.ts) would keep it readable to anyone
 * holding the service's key for as long as the entry lives, for no use: the message is written to
 * the person's Marketo activity log at each refusal (sync-failure-activity.ts), where the marketer
 * who must fix the value looks, under Marketo's own access rules; and a retry asks Dynamics again,
 * which says it afresh. The code (e.g. 0x80044331) and the columns tell an operator what kind of
 * refusal it is without the value.
 *
 * Bounded like the intake's parked entries: about the newest `maxEntries` (10,000 by default) are
 * kept; parking past the cap drops the oldest first, and `park` says how many it dropped.
 *
 * Dynamics → Marketo entries (direction `dynamics-to-marketo`) are records Marketo refused (a Sync
 * Leads result `skipped`, its reason code: 1003, 1004, 1005, 1007, …) or that we did not send
 * (`NO_EMAIL`, and the duplicate rule's `SEVERAL_UNLINKED_PERSONS` / `PERSON_LINKED_ELSEWHERE`,
 * unlinked-record-match.ts). Same hash, same key layout: the `personId` field holds the persons
 * involved as a comma list (none for a record never created, several for an ambiguous email), and
 * Marketo's reason message is not kept either. Marketo documents its record-level messages as fixed
 * texts ("Invalid data", "Lead not found", "Field '%s' not found", marketo-rest-and-ssfs.md §2.3),
 * but a message is its to change and the code alone names the reason; there is no status (a skip is
 * inside a 200) and no activity (the person is ours to write, not the one at fault).
 */

export type ParkedDirection = 'marketo-to-dynamics' | 'dynamics-to-marketo'

interface ParkedRefusalOfEitherDirection {
  readonly table: SyncTable
  /** The Dynamics record's GUID, lower case. */
  readonly recordId: string
  /** Marketo fields whose change was refused, by REST name. */
  readonly fields: readonly string[]
  /** The Dataverse columns written (or, for an option label, the column with no such option); read, for Dynamics → Marketo. */
  readonly columns: readonly string[]
}

/** A Marketo → Dynamics write Dynamics refused. */
export interface ParkedRefusal extends ParkedRefusalOfEitherDirection {
  readonly direction: 'marketo-to-dynamics'
  /** The Marketo person linked to it. */
  readonly personId: number
  /** The reason: Dynamics' error code (`0x80044331`), or ours when we refused before writing (`OPTION_LABEL_UNKNOWN`). */
  readonly code: string
  /** Dynamics' HTTP status, when Dynamics answered. */
  readonly status?: number
  /** The refusal, with Dynamics' message, reached the person's Marketo activity log. */
  readonly activityLogged: boolean
}

/** A Dynamics → Marketo record Marketo refused, or that the sync could not send. */
export interface DynamicsParkedRefusal extends ParkedRefusalOfEitherDirection {
  readonly direction: 'dynamics-to-marketo'
  /** The persons involved: the linked one, those its email matched ambiguously, none for a record never created. */
  readonly personIds: readonly number[]
  /** Marketo's reason code (`1003`, `1004`, …) or ours (`NO_EMAIL`, `SEVERAL_UNLINKED_PERSONS`, `PERSON_LINKED_ELSEWHERE`). */
  readonly code: string
}

export type AnyParkedRefusal = ParkedRefusal | DynamicsParkedRefusal

interface ParkedEntryDates {
  readonly id: string
  /** When this pair was first parked (kept across refusals: an entry's age). */
  readonly parkedAt: Date
  readonly lastRefusedAt: Date
  /** Writes refused so far: the first refusal is 1, each refused retry adds one. */
  readonly attempts: number
}

export type MarketoParkedChange = ParkedRefusal & ParkedEntryDates
export type DynamicsParkedChange = DynamicsParkedRefusal & ParkedEntryDates
export type ParkedChange = MarketoParkedChange | DynamicsParkedChange
/** The entries of one direction. */
export type ParkedChangeOf<D extends ParkedDirection> = Extract<ParkedChange, { readonly direction: D }>

export interface ParkedChangeFilter {
  readonly direction?: ParkedDirection
  /** Only this reason (Dynamics' code). */
  readonly code?: string
  /** Only entries first parked before this moment (older than an age). */
  readonly parkedBefore?: Date
  readonly table?: SyncTable
  /** At most this many, oldest first; 1,000 by default. */
  readonly limit?: number
}

/** A record whose write went through, and the Marketo fields that write decided. */
export interface SettledRecord {
  readonly direction: ParkedDirection
  readonly table: SyncTable
  readonly recordId: string
  readonly fields: readonly string[]
}

export const DEFAULT_MAX_PARKED_CHANGES = 10_000
const DEFAULT_LIST_LIMIT = 1_000

export class ParkedChangeError extends Error {
  constructor (readonly code: 'PARKED_CHANGE_NOT_FOUND' | 'PARKED_CHANGE_INVALID_ID' | 'PARKED_CHANGE_OTHER_DIRECTION', message: string) {
    super(message)
    this.name = 'ParkedChangeError'
  }
}

/** The entry id of a pair: direction, table and record, nothing personal. */
export function parkedChangeId (direction: ParkedDirection, table: SyncTable, recordId: string): string {
  return `${direction}:${table}:${recordId.toLowerCase()}`
}

/**
 * Pure: whether a write that decided `settledFields` clears an entry parked for `parkedFields`. Only
 * when it covers all of them: a record parked for its title and later written for its phone alone
 * still has the refused title to deliver, which only a retry (or a new edit of the title) brings.
 */
export function settlesParkedFields (parkedFields: readonly string[], settledFields: readonly string[]): boolean {
  const settled = new Set(settledFields)
  return parkedFields.every((field) => settled.has(field))
}

/**
 * KEYS[1] the index, KEYS[2..] the entries; ARGV[1] the cap, ARGV[2] now (ms), ARGV[3] the entry
 * key prefix (for the trimmed ones, same tag), then per entry: id, direction, table, recordId,
 * personId (a comma list of ids for dynamics-to-marketo), fields (comma list), columns (comma list), code, status ('' none), activityLogged,
 * replace ('1': a retry refused again).
 * An entry parked again keeps its first date, adds an attempt, takes the newest code and status,
 * and holds the union of the fields refused — except after a retry, which read every parked field
 * and names exactly those still refused: a field the retry settled must not keep the entry alive.
 * Returns how many oldest entries the cap dropped. The trimmed entries' keys are built here from
 * the index (ARGV[3] is their prefix, same {parked-changes} tag): the one exception to "a script
 * touches only KEYS", kept so parking and trimming stay one atomic step; redis-keys.ts says so.
 */
const PARK = `
local function union (held, added)
  local seen, out = {}, {}
  for item in string.gmatch((held or '') .. ',' .. added, '([^,]+)') do
    if not seen[item] then seen[item] = true; out[#out + 1] = item end
  end
  return table.concat(out, ',')
end
local cap, now, entryPrefix = tonumber(ARGV[1]), ARGV[2], ARGV[3]
for i = 2, #KEYS do
  local a = 4 + (i - 2) * 11
  local key = KEYS[i]
  redis.call('HSETNX', key, 'parkedAt', now)
  local replace = ARGV[a + 10] == '1'
  local fields = union(replace and '' or redis.call('HGET', key, 'fields'), ARGV[a + 5])
  local columns = union(replace and '' or redis.call('HGET', key, 'columns'), ARGV[a + 6])
  redis.call('HINCRBY', key, 'attempts', 1)
  redis.call('HSET', key, 'id', ARGV[a], 'direction', ARGV[a + 1], 'table', ARGV[a + 2], 'recordId', ARGV[a + 3],
    'personId', ARGV[a + 4], 'fields', fields, 'columns', columns, 'code', ARGV[a + 7], 'status', ARGV[a + 8],
    'activityLogged', ARGV[a + 9], 'lastRefusedAt', now)
  redis.call('ZADD', KEYS[1], 'NX', redis.call('HGET', key, 'parkedAt'), ARGV[a])
end
local excess = redis.call('ZCARD', KEYS[1]) - cap
if excess <= 0 then return 0 end
local oldest = redis.call('ZPOPMIN', KEYS[1], excess)
for i = 1, #oldest, 2 do redis.call('DEL', entryPrefix .. oldest[i]) end
return excess
`

/**
 * KEYS[1] the index, KEYS[2..] the entries; ARGV the settled fields of each (comma list), in KEYS'
 * order. An entry whose fields are all settled is removed (settlesParkedFields, in Lua so no park
 * can fall between the read and the delete). Returns the ids removed.
 */
const SETTLE = `
local removed = {}
for i = 2, #KEYS do
  local fields = redis.call('HGET', KEYS[i], 'fields')
  if fields then
    local settled = {}
    for item in string.gmatch(ARGV[i - 1], '([^,]+)') do settled[item] = true end
    local all = true
    for item in string.gmatch(fields, '([^,]+)') do
      if not settled[item] then all = false; break end
    end
    if all then
      local id = redis.call('HGET', KEYS[i], 'id')
      redis.call('DEL', KEYS[i])
      redis.call('ZREM', KEYS[1], id)
      removed[#removed + 1] = id
    end
  end
end
return removed
`

/** KEYS[1] the index, KEYS[2] the entry; ARGV[1] the id, ARGV[2] its lastRefusedAt (ms) as the retry read it. */
const DISCARD_IF_UNCHANGED = `
if redis.call('HGET', KEYS[2], 'lastRefusedAt') ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[1], ARGV[1])
return 1
`

export class ParkedChangeStore {
  readonly #keys: ReturnType<typeof parkedChangeKeys>
  readonly #maxEntries: number

  constructor (private readonly redis: RedisClient, prefix: string, options: { maxEntries?: number } = {}) {
    this.#keys = parkedChangeKeys(prefix)
    this.#maxEntries = options.maxEntries ?? DEFAULT_MAX_PARKED_CHANGES
    if (!Number.isInteger(this.#maxEntries) || this.#maxEntries < 1) throw new RangeError(`maxEntries must be a positive integer, not ${this.#maxEntries}`)
  }

  /** Parks each refusal (or updates its pair's entry); returns how many of the oldest entries the cap dropped. */
  async park (refusals: readonly AnyParkedRefusal[], at: Date = new Date(), options: { readonly replaceFields?: boolean } = {}): Promise<{ readonly dropped: number }> {
    if (refusals.length === 0) return { dropped: 0 }
    const ids = refusals.map((refusal) => parkedChangeId(refusal.direction, refusal.table, refusal.recordId))
    const args = refusals.flatMap((refusal, index) => [
      ids[index]!, refusal.direction, refusal.table, refusal.recordId.toLowerCase(),
      refusal.direction === 'marketo-to-dynamics' ? String(refusal.personId) : refusal.personIds.map(String).join(','),
      listOf(refusal.fields), listOf(refusal.columns), refusal.code,
      refusal.direction === 'marketo-to-dynamics' && refusal.status !== undefined ? String(refusal.status) : '',
      refusal.direction === 'marketo-to-dynamics' && refusal.activityLogged ? '1' : '0',
      options.replaceFields === true ? '1' : '0'
    ])
    const dropped = await this.redis.eval(PARK, 1 + ids.length, this.#keys.index, ...ids.map(this.#keys.entry),
      this.#maxEntries, at.getTime(), this.#keys.entry(''), ...args) as number
    return { dropped }
  }

  /** Clears the entries the records' writes settled (see settlesParkedFields); returns the ids cleared. */
  async settle (records: readonly SettledRecord[]): Promise<string[]> {
    if (records.length === 0) return []
    const ids = records.map((record) => parkedChangeId(record.direction, record.table, record.recordId))
    return await this.redis.eval(SETTLE, 1 + ids.length, this.#keys.index, ...ids.map(this.#keys.entry),
      ...records.map((record) => listOf(record.fields))) as string[]
  }

  async get (id: string): Promise<ParkedChange | undefined> {
    return parseEntry(await this.redis.hgetall(this.#keys.entry(checkedId(id))))
  }

  /** Oldest first. Reads the index, then each entry (one slot: one pipeline, on a cluster too). */
  async list<D extends ParkedDirection = ParkedDirection> (filter: ParkedChangeFilter & { readonly direction?: D } = {}): Promise<Array<ParkedChangeOf<D>>> {
    const limit = filter.limit ?? DEFAULT_LIST_LIMIT
    const ids = await this.redis.zrangebyscore(this.#keys.index, '-inf', filter.parkedBefore === undefined ? '+inf' : `(${filter.parkedBefore.getTime()}`)
    const pipeline = this.redis.pipeline()
    for (const id of ids) pipeline.hgetall(this.#keys.entry(id))
    const replies = ids.length === 0 ? [] : (await pipeline.exec()) ?? []
    const entries: Array<ParkedChangeOf<D>> = []
    for (const [error, reply] of replies) {
      if (error !== null) throw error
      const entry = parseEntry(reply as Record<string, string>)
      if (entry === undefined) continue
      if (filter.direction !== undefined && entry.direction !== filter.direction) continue
      if (filter.code !== undefined && entry.code !== filter.code) continue
      if (filter.table !== undefined && entry.table !== filter.table) continue
      entries.push(entry as ParkedChangeOf<D>)
      if (entries.length >= limit) break
    }
    return entries
  }

  /**
   * Removes an entry a retry settled, unless it was parked again since the retry read it (a pass
   * running beside the retry found a new refusal of the same record): that newer refusal must stay.
   * True when removed.
   */
  async discardIfUnchanged (entry: Pick<ParkedChange, 'id' | 'lastRefusedAt'>): Promise<boolean> {
    const checked = checkedId(entry.id)
    return await this.redis.eval(DISCARD_IF_UNCHANGED, 2, this.#keys.index, this.#keys.entry(checked), checked, String(entry.lastRefusedAt.getTime())) === 1
  }

  /** Removes an entry (an operator gave up on it, or a retry delivered it); false when there was none. */
  async discard (id: string): Promise<boolean> {
    const checked = checkedId(id)
    const replies = await this.redis.multi().del(this.#keys.entry(checked)).zrem(this.#keys.index, checked).exec()
    return replies?.[0]?.[1] === 1
  }
}

const ID = /^(marketo-to-dynamics|dynamics-to-marketo):(lead|contact):[0-9a-f-]{36}$/

/** An id from outside (the admin API to come) names an entry, nothing else: no other key can be reached. */
function checkedId (id: string): string {
  if (!ID.test(id)) throw new ParkedChangeError('PARKED_CHANGE_INVALID_ID', 'not a parked change id')
  return id
}

function listOf (names: readonly string[]): string {
  // Marketo REST names and Dataverse logical names have no commas.
  return names.filter((name) => name !== '' && !name.includes(',')).join(',')
}

function parseEntry (hash: Record<string, string>): ParkedChange | undefined {
  if (hash.id === undefined || (hash.table !== 'lead' && hash.table !== 'contact')) return undefined
  const common = {
    id: hash.id,
    table: hash.table,
    recordId: hash.recordId ?? '',
    fields: (hash.fields ?? '').split(',').filter((name) => name !== ''),
    columns: (hash.columns ?? '').split(',').filter((name) => name !== ''),
    code: hash.code ?? '',
    parkedAt: new Date(Number(hash.parkedAt)),
    lastRefusedAt: new Date(Number(hash.lastRefusedAt)),
    attempts: Number(hash.attempts)
  } as const
  if (hash.direction === 'dynamics-to-marketo') {
    return { ...common, direction: hash.direction, personIds: (hash.personId ?? '').split(',').filter((id) => id !== '').map(Number) }
  }
  if (hash.direction !== 'marketo-to-dynamics') return undefined
  const status = hash.status === undefined || hash.status === '' ? undefined : Number(hash.status)
  return {
    ...common,
    direction: hash.direction,
    personId: Number(hash.personId),
    ...(status === undefined ? {} : { status }),
    activityLogged: hash.activityLogged === '1'
  }
}
