import { randomUUID } from 'node:crypto'
import { ENTITY_DEFINITIONS, findEntityDefinition, type EntityDefinition } from './entity-model.ts'

/**
 * The emulator's rows, in memory. Each row carries what Dataverse maintains itself: the primary key,
 * `createdon`/`modifiedon` (second precision, emitted `2024-01-01T00:00:00Z` because
 * dynamics-web-api only revives dates without milliseconds, reference doc §9.4), `versionnumber`
 * (one counter for the whole store, like SQL rowversion; the `@odata.etag` is `W/"<versionnumber>"`,
 * §1.8), the computed `fullname` and `_ownerid_value`.
 *
 * `insert` is the programmatic door (tests, the launcher's seed) and skips payload validation; HTTP
 * writes are validated by record-payload.ts before they get here.
 */

export type DataverseRecord = Record<string, unknown>

/** A deleted row as change tracking remembers it: its id and the version the delete got. */
export interface RowTombstone {
  readonly id: string
  readonly version: number
}

export class UnknownEntitySetError extends Error {
  readonly code = 'UNKNOWN_ENTITY_SET'
  constructor (entitySet: string) {
    super(`the Dataverse emulator has no entity set '${entitySet}'`)
    this.name = 'UnknownEntitySetError'
  }
}

export interface DataverseRecordStore {
  /** Adds a row (defaults and system columns filled in) and returns its id. */
  insert (entitySet: string, record: DataverseRecord): string
  get (entitySet: string, id: string): DataverseRecord | undefined
  list (entitySet: string): DataverseRecord[]
  /**
   * The stored rows themselves, not copies, for queries that only read them and copy what they
   * return: copying a whole table per look-up made the emulator, not the service, the bottleneck
   * of the benchmarks once it held tens of thousands of leads.
   */
  scan (entitySet: string): ReadonlyArray<Readonly<DataverseRecord>>
  /**
   * Applies column changes as a person in Dynamics would (no payload validation); bumps version and
   * `modifiedon`. `_modifiedby_value` names the writer; the default user when omitted.
   */
  update (entitySet: string, id: string, changes: DataverseRecord): DataverseRecord | undefined
  /** Deletes a row, leaving the tombstone change tracking reports. */
  delete (entitySet: string, id: string): boolean
  /**
   * Removes every row and tombstone (a fresh org: delta links taken before see no deletes), then
   * re-creates the default (calling) user so ownership keeps working.
   */
  clear (): void
  /** The systemuser that owns rows created without `ownerid@odata.bind` (the caller, as in WhoAmI). */
  readonly defaultUserId: string
  /**
   * Calls `listener` with a copy of every row right after it is stored (from then on a query finds it).
   * The benchmarks time "the lead is visible in Dynamics" with it. Returns the unsubscribe function.
   */
  onInsert (listener: (entitySet: string, row: DataverseRecord) => void): () => void
  /**
   * Calls `listener` with the row's id and a copy of the changes of every update (a PATCH, each
   * target of an UpdateMultiple, or `update` here) right after it is applied. Fault tests count the
   * service's writes per record with it. Returns the unsubscribe function.
   */
  onUpdate (listener: (entitySet: string, id: string, changes: DataverseRecord) => void): () => void
}

export function dataverseTimestamp (date: Date = new Date()): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z')
}

export class RecordStore implements DataverseRecordStore {
  readonly defaultUserId: string
  readonly #tables = new Map<string, Map<string, DataverseRecord>>()
  readonly #insertListeners = new Set<(entitySet: string, row: DataverseRecord) => void>()
  readonly #updateListeners = new Set<(entitySet: string, id: string, changes: DataverseRecord) => void>()
  readonly #tombstones = new Map<string, RowTombstone[]>()
  #version = 1_000_000

  constructor (options: { defaultUserId?: string } = {}) {
    this.defaultUserId = options.defaultUserId ?? randomUUID()
    this.#seedDefaultUser()
  }

  #table (entitySet: string): { definition: EntityDefinition, rows: Map<string, DataverseRecord> } {
    const definition = findEntityDefinition(entitySet)
    if (definition === undefined) throw new UnknownEntitySetError(entitySet)
    let rows = this.#tables.get(entitySet)
    if (rows === undefined) {
      rows = new Map()
      this.#tables.set(entitySet, rows)
    }
    return { definition, rows }
  }

  #seedDefaultUser (): void {
    this.insert('systemusers', {
      systemuserid: this.defaultUserId,
      firstname: '#',
      lastname: 'Marketo Sync',
      internalemailaddress: 'marketo-sync@sandbox.local',
      accessmode: 4,
      isdisabled: false
    })
  }

  nextVersion (): number {
    this.#version += 1
    return this.#version
  }

  /** The version of the latest write: every change so far has a version at most this. */
  get currentVersion (): number {
    return this.#version
  }

  insert (entitySet: string, record: DataverseRecord): string {
    const { definition, rows } = this.#table(entitySet)
    const givenId = record[definition.primaryKey]
    const id = typeof givenId === 'string' && givenId !== '' ? givenId.toLowerCase() : randomUUID()
    const now = dataverseTimestamp()
    const row: DataverseRecord = {}
    for (const column of Object.keys(definition.columns)) row[column] = null
    Object.assign(row, definition.defaults, record, {
      [definition.primaryKey]: id,
      createdon: typeof record.createdon === 'string' ? record.createdon : now,
      modifiedon: typeof record.modifiedon === 'string' ? record.modifiedon : now,
      _createdby_value: typeof record._createdby_value === 'string' ? record._createdby_value : this.defaultUserId,
      _modifiedby_value: typeof record._modifiedby_value === 'string' ? record._modifiedby_value : this.defaultUserId,
      versionnumber: this.nextVersion()
    })
    if (definition.userOwned && (row._ownerid_value === null || row._ownerid_value === undefined)) {
      row._ownerid_value = this.defaultUserId
    }
    applyComputedColumns(definition, row)
    rows.set(id, row)
    for (const listener of this.#insertListeners) listener(entitySet, { ...row })
    return id
  }

  onInsert (listener: (entitySet: string, row: DataverseRecord) => void): () => void {
    this.#insertListeners.add(listener)
    return () => { this.#insertListeners.delete(listener) }
  }

  onUpdate (listener: (entitySet: string, id: string, changes: DataverseRecord) => void): () => void {
    this.#updateListeners.add(listener)
    return () => { this.#updateListeners.delete(listener) }
  }

  update (entitySet: string, id: string, changes: DataverseRecord): DataverseRecord | undefined {
    const { definition, rows } = this.#table(entitySet)
    const key = id.toLowerCase()
    const row = rows.get(key)
    if (row === undefined) return undefined
    const applied = {
      ...changes,
      modifiedon: dataverseTimestamp(),
      _modifiedby_value: typeof changes._modifiedby_value === 'string' ? changes._modifiedby_value : this.defaultUserId,
      versionnumber: this.nextVersion()
    }
    Object.assign(row, applied)
    applyComputedColumns(definition, row)
    for (const listener of this.#updateListeners) listener(entitySet, key, { ...applied })
    return { ...row }
  }

  delete (entitySet: string, id: string): boolean {
    const key = id.toLowerCase()
    const removed = this.#table(entitySet).rows.delete(key)
    if (removed) {
      let tombstones = this.#tombstones.get(entitySet)
      if (tombstones === undefined) {
        tombstones = []
        this.#tombstones.set(entitySet, tombstones)
      }
      tombstones.push({ id: key, version: this.nextVersion() })
    }
    return removed
  }

  /** The deletes of a table, oldest first (versions ascending). */
  tombstones (entitySet: string): readonly RowTombstone[] {
    this.#table(entitySet)
    return this.#tombstones.get(entitySet) ?? []
  }

  /**
   * Forgets the tombstones no valid delta token can ask for any more (versions up to `version`),
   * so expiring tokens bounds the memory deletes take.
   */
  forgetTombstonesThrough (version: number): void {
    for (const [entitySet, tombstones] of this.#tombstones) {
      this.#tombstones.set(entitySet, tombstones.filter((tombstone) => tombstone.version > version))
    }
  }

  has (entitySet: string, id: string): boolean {
    return this.#table(entitySet).rows.has(id.toLowerCase())
  }

  get (entitySet: string, id: string): DataverseRecord | undefined {
    const row = this.#table(entitySet).rows.get(id.toLowerCase())
    return row === undefined ? undefined : { ...row }
  }

  list (entitySet: string): DataverseRecord[] {
    return [...this.#table(entitySet).rows.values()].map((row) => ({ ...row }))
  }

  scan (entitySet: string): ReadonlyArray<Readonly<DataverseRecord>> {
    return [...this.#table(entitySet).rows.values()]
  }

  clear (): void {
    for (const definition of ENTITY_DEFINITIONS) this.#tables.get(definition.entitySet)?.clear()
    this.#tombstones.clear()
    this.#seedDefaultUser()
  }
}

function applyComputedColumns (definition: EntityDefinition, row: DataverseRecord): void {
  if (definition.computesFullname) {
    // Dataverse's default full-name format is "First Last".
    const parts = [row.firstname, row.lastname].filter((part): part is string => typeof part === 'string' && part !== '')
    row.fullname = parts.length > 0 ? parts.join(' ') : null
  }
  if ('address1_composite' in definition.columns) {
    const lines = [row.address1_line1, row.address1_line2, row.address1_line3, row.address1_city,
      row.address1_stateorprovince, row.address1_postalcode, row.address1_country]
      .filter((part): part is string => typeof part === 'string' && part !== '')
    row.address1_composite = lines.length > 0 ? lines.join('\n') : null
  }
}
