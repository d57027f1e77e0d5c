import type { DataverseClient } from '../dynamics/dataverse-client.ts'
import { changeReadColumns, selectedColumns, splitChanges, TABLES, type ChangedRow } from '../dynamics/table-changes.ts'
import type { RecordLink } from '../domain/record-link.ts'
import { AdminBadRequestError, AdminNotFoundError } from '../errors.ts'
import type { MarketoPersonWriter } from '../background-sync/dynamics-to-marketo-delivery.ts'
import { PAIR_DIRECTIONS, type PairDirection, type PairDirectionRecord, type PairStateStore } from '../background-sync/pair-state-store.ts'
import { parkedChangeId, type ParkedChange, type ParkedChangeStore } from '../background-sync/parked-changes.ts'
import { SYNC_FAILURE_ACTIVITY_TYPE } from '../marketo/sync-failure-activity.ts'
import type { FieldMapping, SyncDirection, SyncTable } from '../sync/field-mapping.ts'
import { SYNC_FILTER_COLUMN, syncFilterDecision, type SyncFilterDecision } from '../sync/sync-filter.ts'

/**
 * "Why didn't it sync?" (issue 13 §4): everything the service knows about one person ⇄ record pair,
 * in one answer. The link, each direction's last decision and when (the pair's sync record,
 * pair-state-store.ts), which side's value wins each mapped field, the record's sync filter read
 * live from Dataverse, and any parked failure with its code. Dynamics' and Marketo's messages are not
 * kept by the service (they may quote a value): the answer says where they are, the person's
 * Marketo activity log. Routes (routes/admin-explain.ts) parse and call one of these.
 */

/** What explain and resync read: the stores, the clients, and what the worker learns at start-up. */
export interface AdminPairDeps {
  readonly mapping: () => FieldMapping
  readonly links: { getMany: (marketoIds: readonly number[]) => Promise<Map<number, RecordLink>> }
  readonly pairs: Pick<PairStateStore, 'linkedPersons' | 'syncRecord'>
  readonly parked: Pick<ParkedChangeStore, 'get'>
  readonly marketo: Pick<MarketoPersonWriter, 'getLeadsBy' | 'getLeadsByIds'>
  readonly dataverse: Pick<DataverseClient, 'retrieveQueryPage'>
  /** The tables that have `new_synctomkto` (read once from Dataverse's metadata, asked again after a failure). */
  readonly syncFilterTables: () => Promise<ReadonlySet<SyncTable>>
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const MARKETO_ID = /^[1-9][0-9]{0,9}$/
/** Enough of an address to ask Marketo; Marketo itself decides whether it is one. */
const EMAIL = /^[^\s@]+@[^\s@]+$/

/** Pure: a record id as the stores keep it (a lower-case GUID), or a 400. */
export function recordIdOf (id: string): string {
  const lower = id.toLowerCase()
  if (!GUID.test(lower)) throw new AdminBadRequestError('INVALID_RECORD_ID', 'a Dynamics record id is a GUID, e.g. 3f2a1c9e-5b7d-4e21-9c3a-0d8e6f4b2a17')
  return lower
}

/** Pure: a Marketo person's id, or a 400. */
export function marketoIdOf (id: string | number): number {
  const text = String(id)
  if (!MARKETO_ID.test(text)) throw new AdminBadRequestError('INVALID_MARKETO_ID', 'a Marketo person id is a positive integer')
  return Number(text)
}

/** Pure: whether the path's `idOrEmail` is a Marketo id or an email; anything else is a 400. */
export function personKeyOf (idOrEmail: string): { marketoId: number } | { email: string } {
  if (MARKETO_ID.test(idOrEmail)) return { marketoId: Number(idOrEmail) }
  if (EMAIL.test(idOrEmail)) return { email: idOrEmail }
  throw new AdminBadRequestError('INVALID_PERSON', 'a person is named by its Marketo id (a positive integer) or its email address')
}

export interface FoundPerson {
  readonly marketoId: number
  /** Marketo has the person (it may have been deleted there while its link remains). */
  readonly inMarketo: boolean
  /** Other persons with the same email, when found by email: the duplicate rule leaves such persons unlinked. */
  readonly sameEmailPersonIds: readonly number[]
}

/**
 * The person by Marketo id (one Get Leads by id) or by email (one Get Leads by email); 404 when
 * Marketo has none and no link names it. Of several persons with one email, the one linked is
 * explained (the others are listed), else the oldest. The email goes to Marketo and nowhere else.
 */
export async function findPerson (deps: Pick<AdminPairDeps, 'marketo' | 'links'>, key: { marketoId: number } | { email: string }): Promise<FoundPerson> {
  if ('marketoId' in key) {
    const [person] = await deps.marketo.getLeadsByIds([key.marketoId], ['id'])
    if (person !== undefined) return { marketoId: key.marketoId, inMarketo: true, sameEmailPersonIds: [] }
    if ((await deps.links.getMany([key.marketoId])).has(key.marketoId)) return { marketoId: key.marketoId, inMarketo: false, sameEmailPersonIds: [] }
    throw new AdminNotFoundError('PERSON_NOT_FOUND', 'Marketo has no person with this id, and no record is linked to one')
  }
  const ids = (await deps.marketo.getLeadsBy('email', [key.email], ['id'])).map((person) => Number(person.id)).filter(Number.isInteger).sort((a, b) => a - b)
  if (ids.length === 0) throw new AdminNotFoundError('PERSON_NOT_FOUND', 'Marketo has no person with this email')
  const links = ids.length === 1 ? new Map() : await deps.links.getMany(ids)
  const marketoId = ids.find((id) => links.has(id)) ?? ids[0]!
  return { marketoId, inMarketo: true, sameEmailPersonIds: ids.filter((id) => id !== marketoId) }
}

/**
 * The record as a change read answers it (the same columns and option labels, the sync filter when
 * the table has it), or undefined when Dataverse has none: what a pass would deliver now.
 */
export async function readCurrentRecord (deps: Pick<AdminPairDeps, 'dataverse'>, mapping: FieldMapping, table: SyncTable, recordId: string, syncFilter: boolean): Promise<ChangedRow | undefined> {
  const { entitySet, primaryKey } = TABLES[table]
  const select = selectedColumns(table, changeReadColumns(mapping, table, { syncFilter }))
  // A checked lower-case GUID, unquoted in $filter (dataverse-web-api-and-msal.md §1.10).
  const page = await deps.dataverse.retrieveQueryPage<Record<string, unknown>>(entitySet, { select, filter: `${primaryKey} eq ${recordIdOf(recordId)}` }, { formattedValues: true })
  return splitChanges(page.value, primaryKey, select).upserted[0]
}

export type FieldOwner = 'marketo' | 'dynamics'

export interface FieldOwnership {
  readonly marketoField: string
  readonly column: string
  readonly direction: SyncDirection
  /** The side whose value the other takes: the only side for a one-way field, the collision rule's winner for a two-way one. */
  readonly owner: FieldOwner
}

/** Pure: the collision rule (marketo-native-dynamics-sync.md §2): Marketo wins on leads, Dynamics on contacts. */
export function collisionWinner (table: SyncTable): FieldOwner {
  return table === 'lead' ? 'marketo' : 'dynamics'
}

/** Pure: which side owns each mapped field of the table, from the mapping's directions and the collision rule. */
export function fieldOwnership (mapping: FieldMapping, table: SyncTable): FieldOwnership[] {
  return mapping.fields.flatMap((entry) => {
    const column = entry[table]
    if (column === null) return []
    const owner: FieldOwner = entry.direction === 'toMarketo' ? 'dynamics' : entry.direction === 'toDynamics' ? 'marketo' : collisionWinner(table)
    return [{ marketoField: entry.marketoField, column, direction: entry.direction, owner }]
  })
}

export interface SyncFilterState {
  readonly column: typeof SYNC_FILTER_COLUMN
  /** Whether the table has the column at all: without it every record syncs. */
  readonly present: boolean
  /** The record's value: Yes, No, or empty (null); absent when the table has no column. */
  readonly value?: boolean | null
  readonly decision: SyncFilterDecision
}

export interface PairExplanation {
  readonly person: { readonly marketoId: number, readonly inMarketo: boolean, readonly sameEmailPersonIds: readonly number[] } | null
  readonly record: { readonly table: SyncTable, readonly id: string, readonly inDynamics: boolean } | null
  readonly linked: boolean
  readonly lastSync: Readonly<Record<PairDirection, PairDirectionRecord | null>>
  readonly collisionWinner: FieldOwner | null
  readonly fields: readonly FieldOwnership[]
  readonly syncFilter: SyncFilterState | null
  readonly parked: readonly ParkedChange[]
  /** Plain sentences an operator reads first: why the pair is as it is. */
  readonly notes: readonly string[]
}

export async function explainPerson (deps: AdminPairDeps, idOrEmail: string): Promise<PairExplanation> {
  const person = await findPerson(deps, personKeyOf(idOrEmail))
  const link = (await deps.links.getMany([person.marketoId])).get(person.marketoId)
  const table = link === undefined ? undefined : link.type.toLowerCase() as SyncTable
  return await explainPair(deps, person, table === undefined || link === undefined ? undefined : { table, id: link.id.toLowerCase() })
}

export async function explainRecord (deps: AdminPairDeps, table: SyncTable, id: string): Promise<PairExplanation> {
  const recordId = recordIdOf(id)
  const marketoId = (await deps.pairs.linkedPersons(table, [recordId])).get(recordId)
  let person: FoundPerson | null = null
  if (marketoId !== undefined) {
    const [found] = await deps.marketo.getLeadsByIds([marketoId], ['id'])
    person = { marketoId, inMarketo: found !== undefined, sameEmailPersonIds: [] }
  }
  return await explainPair(deps, person, { table, id: recordId }, true)
}

async function explainPair (deps: AdminPairDeps, person: FoundPerson | null, record: { table: SyncTable, id: string } | undefined, recordAsked = false): Promise<PairExplanation> {
  const notes: string[] = []
  const mapping = deps.mapping()
  const noSync = { 'dynamics-to-marketo': null, 'marketo-to-dynamics': null }
  if (record === undefined) {
    notes.push('The person is not linked to a Dynamics record. The background sync never creates records in Dynamics: the "Sync Person to Microsoft" flow step creates the lead (or finds the record) and links it.')
    if (person !== null && person.sameEmailPersonIds.length > 0) notes.push('Several Marketo persons have this email: a Dynamics record with it is linked to none of them (the duplicate rule) and is parked until they are merged.')
    return { person, record: null, linked: false, lastSync: noSync, collisionWinner: null, fields: [], syncFilter: null, parked: [], notes }
  }

  const filterTables = await deps.syncFilterTables()
  const hasFilter = filterTables.has(record.table)
  const row = await readCurrentRecord(deps, mapping, record.table, record.id, hasFilter)
  if (row === undefined && recordAsked && person === null) throw new AdminNotFoundError('RECORD_NOT_FOUND', `Dynamics has no ${record.table} with this id, and no person is linked to one`)
  const linked = person !== null

  const meta = linked ? await deps.pairs.syncRecord(record.table, record.id) : {}
  const lastSync = Object.fromEntries(PAIR_DIRECTIONS.map((direction) => [direction, meta[direction] ?? null])) as Record<PairDirection, PairDirectionRecord | null>
  const parked = (await Promise.all(PAIR_DIRECTIONS.map(async (direction) => await deps.parked.get(parkedChangeId(direction, record.table, record.id)))))
    .filter((entry): entry is ParkedChange => entry !== undefined)

  let syncFilter: SyncFilterState | null = null
  if (row !== undefined) {
    syncFilter = hasFilter
      ? { column: SYNC_FILTER_COLUMN, present: true, value: (row.columns[SYNC_FILTER_COLUMN] ?? null) as boolean | null, decision: syncFilterDecision(row.columns) }
      : { column: SYNC_FILTER_COLUMN, present: false, decision: 'sync' }
  }

  if (row === undefined) notes.push(`Dynamics has no ${record.table} with this id any more: a deleted record sets the person's deleted flag, and its pair is then dropped.`)
  if (!linked) notes.push(`The ${record.table} is not linked to a Marketo person: the next change of the record links it to the one unlinked person with its email, or creates one; a record without an email, or whose email several persons share, is parked.`)
  if (person !== null && !person.inMarketo) notes.push('Marketo has no person with this id any more (deleted there): the record\'s next change makes a new person, as the native sync does.')
  if (syncFilter?.decision === 'skip') notes.push(`The record's sync filter ${SYNC_FILTER_COLUMN} is No: its changes do not reach Marketo (Marketo's changes still reach Dynamics). Set it to Yes or empty to sync it.`)
  for (const entry of parked) {
    notes.push(entry.direction === 'marketo-to-dynamics'
      ? `Parked: Dynamics refused the person's change of ${entry.fields.join(', ')} with code ${entry.code}. Dynamics' message is in the person's Marketo activity log ("${SYNC_FAILURE_ACTIVITY_TYPE.name}"); the service does not keep it (it may quote the value). Fix the value in Marketo, then retry the parked failure or resync.`
      : `Parked: the record did not reach Marketo, code ${entry.code}. Fix it (in Dynamics, or merge duplicate persons in Marketo), then retry the parked failure or resync.`)
  }
  for (const direction of PAIR_DIRECTIONS) {
    const last = lastSync[direction]
    if (linked && last === null) notes.push(`No ${direction} decision recorded for this pair yet (none since it was linked, or since a resync).`)
    if (last?.outcome === 'refused' && !parked.some((entry) => entry.direction === direction)) notes.push(`The last ${direction} write was refused with code ${last.code ?? 'unknown'}; its parked entry has been retried or discarded since.`)
  }

  return {
    person: person === null ? null : { marketoId: person.marketoId, inMarketo: person.inMarketo, sameEmailPersonIds: person.sameEmailPersonIds },
    record: { table: record.table, id: record.id, inDynamics: row !== undefined },
    linked,
    lastSync,
    collisionWinner: collisionWinner(record.table),
    fields: fieldOwnership(mapping, record.table),
    syncFilter,
    parked,
    notes
  }
}
