import type { Logger } from 'pino'
import type { ChangedRow } from '../dynamics/table-changes.ts'
import type { SyncLeadResult, SyncLeadsAction } from '../marketo/marketo-rest-client.ts'
import { writesToMarketo, type FieldMapping, type SyncTable } from '../sync/field-mapping.ts'
import { mergeFieldChanges, type LastSyncedState } from '../sync/field-merge.ts'
import { canonicalFieldValue, writableFieldValue, type FieldFingerprinter, type FieldValue } from '../sync/field-fingerprint.ts'
import { labelledColumns } from '../sync/option-labels.ts'
import type { DeliveredPage } from './dynamics-change-pass.ts'
import type { RecordLink } from '../domain/record-link.ts'
import type { RecordType } from '../domain/record-type.ts'
import { emailMatchKey, matchUnlinkedRecord, type UnlinkedRecordReason } from './unlinked-record-match.ts'
import type { PairOutcomeNote, PairStateStore } from './pair-state-store.ts'
import { syncFilterDecision } from '../sync/sync-filter.ts'
import { originatingLeadOf, unlinkedContactRoute } from '../sync/lead-conversion.ts'
import type { DynamicsParkedRefusal, ParkedChangeStore } from './parked-changes.ts'

/**
 * Delivers one page of Dynamics lead or contact changes to Marketo (issue 12 §1, §6, §7): the
 * `deliver` of a Dynamics change pass. It resolves only once Marketo has answered every write, so
 * the pass saves its cursor after the writes it covers (§10); it throws on any call that failed, and
 * the page is read again. Every step is idempotent per change, so a page delivered twice writes
 * nothing more the second time (the merge sees both sides already equal).
 *
 * - A row linked to a person: three-way merge of each mapped field against the pair's last-synced
 *   state, with the person's current values read from Marketo; only the fields whose Marketo value
 *   differs from the merged one are written (diff before write), and the new state is saved after.
 * - A row whose mapped values all equal the last-synced state is skipped before any Marketo call:
 *   that is the echo of our own write (`modifiedby` = our WhoAmI user) or churn in unmapped columns.
 * - A row not linked (issue 12 §3, unlinked-record-match.ts): the persons with its email are read;
 *   none → created with createOnly and linked; exactly one not linked to another record → linked
 *   to it, its fields merged as a new pair's and its deleted flag cleared; otherwise nothing is
 *   written and the record is reported (ids and a reason code).
 * - A deleted row: its linked person's deleted flag is set; the person is never deleted (§7).
 * - A row whose sync filter `new_synctomkto` is an explicit No (sync-filter.ts, issue 12 §8) is left
 *   before anything: not created, its person not updated (Yes → No leaves the person stale), and no
 *   state saved, so after No → Yes that change (and any made meanwhile) is still one and is carried.
 * - An unlinked contact qualified from a lead linked to a person (lead-conversion.ts, issue 12 §7):
 *   that person is linked to the contact instead (the lead loses the link in the same Redis step),
 *   merged as a new contact pair (Dynamics wins collisions); no person is created.
 * - A record Marketo refuses (a `skipped` result and its reason code), one without an email, and one
 *   the duplicate rule reports are parked with the reason (parked-changes.ts, direction
 *   `dynamics-to-marketo`; issue 12 §9: reported, retried or parked, never dropped silently) while
 *   the rest of the page goes on; a record delivered later (or found unchanged, or deleted) clears
 *   its entry. dynamics-parked-change-retry.ts retries an entry through this very function.
 */

export interface MarketoPersonWriter {
  getLeadsBy (filterType: string, values: readonly string[], fields: readonly string[]): Promise<Array<Record<string, unknown>>>
  getLeadsByIds (ids: readonly number[], fields: readonly string[]): Promise<Array<Record<string, unknown>>>
  syncLeads (action: SyncLeadsAction, lookupField: string, input: ReadonlyArray<Readonly<Record<string, unknown>>>): Promise<SyncLeadResult[]>
}

export interface PersonLinker {
  getMany (marketoIds: readonly number[]): Promise<Map<number, RecordLink>>
  set (marketoId: number, link: { type: 'Lead' | 'Contact', id: string }): Promise<void>
  remove (marketoId: number, link: { type: 'Lead' | 'Contact', id: string }): Promise<void>
  markConverted (leadId: string, contactId: string): Promise<void>
  convertedLeads (leadIds: readonly string[]): Promise<Set<string>>
  forgetConverted (leadIds: readonly string[]): Promise<void>
}

export interface DynamicsToMarketoDeliveryDeps {
  readonly table: SyncTable
  readonly mapping: FieldMapping
  readonly marketo: MarketoPersonWriter
  readonly pairs: PairStateStore
  readonly links: PersonLinker
  /** The pair's fingerprinter, keyed with the service's secret (field-fingerprint.ts). */
  readonly fingerprinter: (pairId: string) => FieldFingerprinter
  /** The service's own Dataverse user (WhoAmI): rows it last modified are labelled echoes. */
  readonly serviceUserId: string | undefined
  /** Where refused and reported records are parked, and cleared once delivered (issue 12 §9). */
  readonly parked: Pick<ParkedChangeStore, 'park' | 'settle'>
  /**
   * Writes Marketo's side of fields the merge gives to Dynamics in a pair with no last-synced state for
   * them (a new pair: linked by email, a contact taking over its lead's person; or a field never synced).
   * Such a field is otherwise left to the Marketo → Dynamics direction, which only sees fields Marketo's
   * change feed reports: with no recent Marketo edit it would never be written, and the sides would stay
   * different for good. Through the Marketo → Dynamics write path (its merge, option labels,
   * state/status pairs, parking), with UpdateMultiple, which never creates a record. Absent: left as before.
   */
  readonly carryToDynamics?: (table: SyncTable, items: readonly CarriedToDynamics[]) => Promise<void>
  readonly logger: Logger
}

/** A linked pair's fields whose Marketo value goes to Dynamics now, with the person as Marketo holds it. */
export interface CarriedToDynamics {
  readonly recordId: string
  readonly personId: number
  readonly person: Readonly<Record<string, unknown>>
  readonly fields: readonly string[]
}

export interface DeliveryOutcome {
  readonly created: number
  readonly updated: number
  readonly unchanged: number
  readonly flaggedDeleted: number
  /** Unlinked records linked to the one unlinked Marketo person with their email (issue 12 §3). */
  readonly linked: number
  /** Unlinked records left unsynced because several persons have their email, or only linked ones (issue 12 §3). */
  readonly reported: number
  /** Records Marketo refused (reason codes only: no personal data in logs). */
  readonly refused: number
  /** Rows left unsynced because their sync filter is No (issue 12 §8). */
  readonly filtered: number
  /** Contacts qualified from a linked lead that took over its person (issue 12 §7). */
  readonly converted: number
}

/** The Marketo fields this table carries to Marketo, by Dataverse column. */
export function marketoFieldsByColumn (mapping: FieldMapping, table: SyncTable): Map<string, string> {
  const fields = new Map<string, string>()
  for (const entry of mapping.fields) {
    const column = entry[table]
    if (column !== null && writesToMarketo(entry.direction)) fields.set(column, entry.marketoField)
  }
  return fields
}

/**
 * A changed row's mapped values by Marketo field name; a column Dataverse left out is empty. An
 * option-set column among `labelled` carries its option's label, not its number (option-labels.ts),
 * so Marketo shows "Web", and the fingerprints are taken over the label the merge compares with Marketo's.
 */
export function mappedValues (row: ChangedRow, fieldsByColumn: ReadonlyMap<string, string>, labelled: ReadonlySet<string> = new Set()): Record<string, FieldValue> {
  const values: Record<string, FieldValue> = {}
  for (const [column, field] of fieldsByColumn) {
    const label = labelled.has(column) ? row.labels?.[column] : undefined
    values[field] = label ?? row.columns[column] as FieldValue
  }
  return values
}

/**
 * Whether no mapped field changed since the last sync: nothing of the row's to carry (an echo, or
 * churn in unmapped columns). A field never synced counts as changed only when it has a value, the
 * merge's own rule (field-merge.ts `readField`): an empty one has nothing to carry.
 */
export function matchesLastSynced (values: Readonly<Record<string, FieldValue>>, state: LastSyncedState, fingerprint: FieldFingerprinter): boolean {
  return Object.entries(values).every(([field, value]) => Object.hasOwn(state, field)
    ? state[field] === fingerprint(field, value)
    : canonicalFieldValue(value) === null)
}

/** Marketo's reason for skipping a record (marketo-rest-and-ssfs.md §2.3): its first code, the message left out. */
/** Marketo's "Lead not found" (marketo-rest-and-ssfs.md §2.3): the person was deleted in Marketo. */
const LEAD_NOT_FOUND = '1004'

export function skipReasonCode (result: Extract<SyncLeadResult, { status: 'skipped' }>): string {
  return result.reasons?.[0]?.code ?? 'SKIPPED'
}

/**
 * Pure: the parked entry of a Dynamics record that did not reach Marketo: ids, the Marketo fields
 * involved and the columns they are read from, the reason code. Never a value.
 */
export function dynamicsRefusal (table: SyncTable, recordId: string, personIds: readonly number[], fields: readonly string[], code: string, fieldsByColumn: ReadonlyMap<string, string>): DynamicsParkedRefusal {
  const wanted = new Set(fields)
  return {
    direction: 'dynamics-to-marketo',
    table,
    recordId,
    personIds,
    fields: [...wanted],
    columns: [...fieldsByColumn].flatMap(([column, field]) => wanted.has(field) ? [column] : []),
    code
  }
}

/** The fields a Sync Leads input writes: everything but the lookup `id`. */
function writtenFields (input: Readonly<Record<string, unknown>>): string[] {
  return Object.keys(input).filter((field) => field !== 'id')
}

/** What became of the page's records for the parked-change store: parked with a reason, or delivered. */
interface RecordOutcomes {
  readonly parked: DynamicsParkedRefusal[]
  /** Records delivered, found unchanged or deleted: nothing of theirs is left to deliver. */
  readonly settled: string[]
  /** Fields of new pairs (or never synced) to write to Dynamics now (see `carryToDynamics`). */
  readonly carry: CarriedToDynamics[]
}

/**
 * After the page's states are saved (the write path loads them): the carried fields of the pairs still
 * linked as decided — a pair relinked meanwhile (a contact took the person over) is left alone.
 */
async function carryToDynamics (carry: readonly CarriedToDynamics[], deps: DynamicsToMarketoDeliveryDeps): Promise<void> {
  if (carry.length === 0 || deps.carryToDynamics === undefined) return
  const current = await deps.pairs.linkedPersons(deps.table, carry.map((item) => item.recordId))
  const stillLinked = carry.filter((item) => current.get(item.recordId) === item.personId)
  if (stillLinked.length > 0) await deps.carryToDynamics(deps.table, stillLinked)
}

/** The pair id inside each fingerprint: the Dynamics record, by table. */
export function pairIdOf (table: SyncTable, recordId: string): string {
  return `${table}:${recordId}`
}

export async function deliverDynamicsPage (page: DeliveredPage, deps: DynamicsToMarketoDeliveryDeps): Promise<DeliveryOutcome> {
  const { table, pairs } = deps
  const fieldsByColumn = marketoFieldsByColumn(deps.mapping, table)
  const labelled = labelledColumns(deps.mapping, table)
  const fields = [...fieldsByColumn.values()]
  const recordType = table === 'lead' ? 'Lead' : 'Contact'

  const linked = await pairs.linkedPersons(table, page.upserted.map((row) => row.id))
  const states = await pairs.load(table, page.upserted.filter((row) => linked.has(row.id)).map((row) => row.id))

  let unchanged = 0
  let filtered = 0
  // What this direction decided about each linked pair, for its sync record (pair-state-store.ts).
  const pairOutcomes = new Map<string, PairOutcomeNote>()
  const outcomes: RecordOutcomes = { parked: [], settled: [...page.deletedIds], carry: [] }
  const changedLinked: Array<{ row: ChangedRow, marketoId: number, values: Record<string, FieldValue> }> = []
  const unlinked: Array<{ row: ChangedRow, values: Record<string, FieldValue> }> = []
  for (const row of page.upserted) {
    if (syncFilterDecision(row.columns) === 'skip') {
      filtered++
      if (linked.has(row.id)) pairOutcomes.set(row.id, { outcome: 'filtered' })
      // Ids only; visible to an operator asking why a record did not reach Marketo.
      deps.logger.debug({ table, recordId: row.id }, 'a Dynamics record is not synced: its sync filter new_synctomkto is No')
      continue
    }
    const values = mappedValues(row, fieldsByColumn, labelled)
    const marketoId = linked.get(row.id)
    if (marketoId === undefined) { unlinked.push({ row, values }); continue }
    if (matchesLastSynced(values, states.get(row.id) ?? {}, deps.fingerprinter(pairIdOf(table, row.id)))) {
      unchanged++
      outcomes.settled.push(row.id)
      pairOutcomes.set(row.id, { outcome: 'unchanged' })
      continue
    }
    changedLinked.push({ row, marketoId, values })
  }

  // Linked rows: read the persons as they are now, so a Marketo edit since the last sync is merged, not
  // overwritten; with their deleted flag, which a live record's change clears.
  const deletedFlag = deps.mapping.deletedFlag.marketoField
  const persons = new Map<number, Record<string, unknown>>()
  if (changedLinked.length > 0) {
    for (const person of await deps.marketo.getLeadsByIds(changedLinked.map((c) => c.marketoId), [...fields, deletedFlag])) persons.set(Number(person.id), person)
  }
  const updates: Array<Record<string, unknown>> = []
  /** The record each update of a linked row is for, by index; deleted-flag updates come after them. */
  const updatedRows: string[] = []
  const newStates = new Map<string, LastSyncedState>()
  for (const { row, marketoId, values } of changedLinked) {
    const person = persons.get(marketoId)
    if (person === undefined) {
      // The person was deleted in Marketo. A delete there is never pushed to Dynamics, and the record's
      // next change makes a new person (same email, new id), as the native sync does
      // (marketo-native-dynamics-sync.md §7): the dead link goes, and the row is a new record to match.
      await deps.links.remove(marketoId, { type: recordType, id: row.id })
      // Nor its state: the record is a new pair from here (matched, created, or reported and left).
      await pairs.forget(table, [row.id])
      unlinked.push({ row, values })
      continue
    }
    const base = states.get(row.id) ?? {}
    const fingerprint = deps.fingerprinter(pairIdOf(table, row.id))
    const merged = mergeFieldChanges({
      recordType,
      fields,
      lastSynced: base,
      marketo: { values: person as Record<string, FieldValue> },
      dynamics: { values, lastModifiedByService: row.modifiedBy !== undefined && row.modifiedBy.toLowerCase() === deps.serviceUserId?.toLowerCase() },
      fingerprint
    })
    // A field the merge would write to Dynamics (a Marketo edit, or a collision Marketo won) is left
    // to the Marketo → Dynamics direction: its state stays as it was, so that direction still sees
    // the Marketo edit as one, and this direction does not carry the Dynamics value over it.
    const state: Record<string, string> = { ...merged.lastSynced }
    const neverSynced: string[] = []
    for (const field of Object.keys(merged.writes.dynamics)) {
      if (Object.hasOwn(base, field)) state[field] = base[field]!
      else { delete state[field]; neverSynced.push(field) }
    }
    // A field with no state has no Marketo change waiting in the feed: it goes now (see carryToDynamics).
    if (neverSynced.length > 0) outcomes.carry.push({ recordId: row.id, personId: marketoId, person, fields: neverSynced })
    newStates.set(row.id, state)
    // A person flagged deleted now follows a live record: its lead was deleted and the flow step made
    // it a new one (§7), or the record was restored. The flag says what its record is, so it is cleared.
    const flagged = person[deletedFlag] === true || person[deletedFlag] === 'true'
    if (Object.keys(merged.writes.marketo).length > 0 || flagged) {
      updates.push({ id: marketoId, ...merged.writes.marketo, ...(flagged ? { [deletedFlag]: false } : {}) })
      updatedRows.push(row.id)
    }
  }

  // A person may have left this record since the links were read: a lead qualified into a contact
  // whose pass took the person over meanwhile (lead-conversion.ts). Writing the lead's values now
  // would put them over the contact's, so the links are read again just before the write.
  if (updatedRows.length > 0) {
    const current = await pairs.linkedPersons(table, updatedRows)
    for (let index = updatedRows.length - 1; index >= 0; index--) {
      const recordId = updatedRows[index]!
      if (current.get(recordId) === updates[index]?.id) continue
      updates.splice(index, 1)
      updatedRows.splice(index, 1)
      newStates.delete(recordId)
    }
  }

  // Deleted rows: the person stays, flagged (marketo-native-dynamics-sync.md §7).
  let flaggedDeleted = 0
  const flagged: Array<{ readonly recordId: string, readonly marketoId: number, readonly index: number }> = []
  // Read again just before the write, as for the updates above: a lead qualified and deleted within one
  // poll may have had its person taken over by the contact meanwhile, which must not be flagged deleted.
  const deletedLinks = page.deletedIds.length === 0 ? new Map<string, number>() : await pairs.linkedPersons(table, page.deletedIds)
  for (const id of page.deletedIds) {
    const marketoId = deletedLinks.get(id)
    if (marketoId === undefined) continue
    flagged.push({ recordId: id, marketoId, index: updates.length })
    updates.push({ id: marketoId, [deletedFlag]: true })
    flaggedDeleted++
  }

  let refused = 0
  const updateResults = updates.length === 0 ? [] : await deps.marketo.syncLeads('updateOnly', 'id', updates)
  updateResults.forEach((result, index) => {
    if (result.status !== 'skipped') return
    refused++
    // A refused write is not synced: the record keeps its last-synced state, so its change is still a
    // change next time instead of being taken for done (parking it with the reason is issue 12 §9).
    const recordId = updatedRows[index]
    if (recordId !== undefined) {
      newStates.delete(recordId)
      pairOutcomes.set(recordId, { outcome: 'refused', code: skipReasonCode(result) })
      outcomes.parked.push(dynamicsRefusal(table, recordId, [Number(updates[index]!.id)], writtenFields(updates[index]!), skipReasonCode(result), fieldsByColumn))
    }
    // Which record and Marketo's reason code only: values are personal data.
    deps.logger.warn({ table, marketoId: updates[index]?.id, reasons: result.reasons?.map((r) => r.code) }, 'Marketo refused a background-sync update')
  })
  const writtenRows = new Set(updatedRows.filter((_, index) => updateResults[index]?.status !== 'skipped'))
  for (const recordId of newStates.keys()) if (!writtenRows.has(recordId)) pairOutcomes.set(recordId, { outcome: 'unchanged' })
  await pairs.save(table, newStates, states, { direction: 'dynamics-to-marketo', outcomes: pairOutcomes })
  // Merged and either written or needing no write: delivered.
  outcomes.settled.push(...newStates.keys())

  // A deleted record whose person now carries the flag (or is gone from Marketo too) is no pair any
  // more: its link and state go, so Redis holds live pairs only, a deleted-record sweep does not find it
  // again, and the flow step run for the person again creates a new lead, as §7 documents. A flag
  // Marketo refused for another reason keeps the link, so a later sweep flags it again.
  const unpaired = flagged.filter(({ index }) => {
    const result = updateResults[index]
    return result !== undefined && (result.status !== 'skipped' || skipReasonCode(result) === LEAD_NOT_FOUND)
  })
  for (const { recordId, marketoId } of unpaired) await deps.links.remove(marketoId, { type: recordType, id: recordId })
  await pairs.forget(table, unpaired.map(({ recordId }) => recordId))

  // A lead qualified into a contact that took its person over: its later changes (its Qualified state)
  // belong to no pair; matched by email they would find the person taken and be reported for nothing.
  if (table === 'lead' && unlinked.length > 0) {
    const converted = await deps.links.convertedLeads(unlinked.map(({ row }) => row.id))
    for (let index = unlinked.length - 1; index >= 0; index--) {
      const { row } = unlinked[index]!
      if (!converted.has(row.id)) continue
      unlinked.splice(index, 1)
      outcomes.settled.push(row.id)
      deps.logger.debug({ table, recordId: row.id }, 'a lead qualified into a contact: its person follows the contact')
    }
  }
  if (table === 'lead' && page.deletedIds.length > 0) await deps.links.forgetConverted(page.deletedIds)

  // Contacts qualified from a linked lead take over its person; the other unlinked rows go on below.
  const conversion = table === 'contact' ? await deliverConvertedContacts(unlinked, { ...deps, fields, recordType, fieldsByColumn, outcomes }) : { rest: unlinked, converted: 0, refused: 0 }
  refused += conversion.refused

  // Unlinked rows: the duplicate rule (issue 12 §3), with the persons read by email first.
  const identity = await deliverUnlinkedRows(conversion.rest, { ...deps, fields, recordType, fieldsByColumn, outcomes })
  refused += identity.refused

  await parkRecordOutcomes(outcomes, { ...deps, fields })
  await carryToDynamics(outcomes.carry, deps)

  return { created: identity.created, linked: identity.linked, reported: identity.reported, updated: updateResults.filter((result, index) => index < updatedRows.length && result.status !== 'skipped').length, unchanged, flaggedDeleted, refused, filtered, converted: conversion.converted }
}

type UnlinkedRow = { readonly row: ChangedRow, readonly values: Record<string, FieldValue> }

/**
 * Unlinked contacts qualified from a lead that is linked to a person (issue 12 §7): the person is
 * read, merged with the contact as a new pair (no last-synced state: a field empty on one side is
 * filled from the other, a field set on both is a collision the contact's rule gives to Dynamics),
 * and written. `RecordLinkStore.set` removes the lead's link in the same step, so the lead's later
 * changes (its Qualified state) no longer reach the person, and the Marketo → Dynamics direction
 * writes the person's edits to the contact. A row whose lead is not linked, or whose person Marketo
 * no longer has, is returned in `rest`.
 */
async function deliverConvertedContacts (unlinked: readonly UnlinkedRow[], deps: UnlinkedDeliveryDeps): Promise<{ rest: UnlinkedRow[], converted: number, refused: number }> {
  const leads = unlinked.flatMap(({ row }) => originatingLeadOf(row.columns) ?? [])
  if (leads.length === 0) return { rest: [...unlinked], converted: 0, refused: 0 }
  const leadPersons = await deps.pairs.linkedPersons('lead', [...new Set(leads)])
  const rest: UnlinkedRow[] = []
  const takeovers: Array<UnlinkedRow & { marketoId: number }> = []
  const claimed = new Set<number>()
  for (const unlinkedRow of unlinked) {
    const route = unlinkedContactRoute(originatingLeadOf(unlinkedRow.row.columns), leadPersons)
    // Two contacts from one lead (not the out-of-the-box Qualify): the first takes the person.
    if (route.kind === 'new-record' || claimed.has(route.marketoId)) { rest.push(unlinkedRow); continue }
    claimed.add(route.marketoId)
    takeovers.push({ ...unlinkedRow, marketoId: route.marketoId })
  }
  if (takeovers.length === 0) return { rest, converted: 0, refused: 0 }

  // Linked before the person is read and written: the lead's own pass, running beside this one on
  // the lead's Qualified change, reads the links again just before it writes, and from here on finds
  // the person gone from the lead, so the lead's values do not land over the contact's. A write that
  // fails later leaves the contact linked with no state: its next change is merged as this one is.
  for (const { row, marketoId } of takeovers) await deps.links.set(marketoId, { type: deps.recordType, id: row.id })

  const persons = new Map<number, Record<string, unknown>>()
  for (const person of await deps.marketo.getLeadsByIds(takeovers.map((takeover) => takeover.marketoId), deps.fields)) persons.set(Number(person.id), person)
  const updates: Array<{ row: ChangedRow, marketoId: number, update: Record<string, unknown>, state: Record<string, string>, carry: CarriedToDynamics }> = []
  for (const { row, values, marketoId } of takeovers) {
    const person = persons.get(marketoId)
    if (person === undefined) {
      // Gone from Marketo: the contact takes the new record's road (matched by email or created).
      await deps.links.remove(marketoId, { type: deps.recordType, id: row.id })
      rest.push({ row, values })
      continue
    }
    const merged = mergeFieldChanges({
      recordType: deps.recordType,
      fields: deps.fields,
      lastSynced: {},
      marketo: { values: person as Record<string, FieldValue> },
      dynamics: { values, lastModifiedByService: row.modifiedBy !== undefined && row.modifiedBy.toLowerCase() === deps.serviceUserId?.toLowerCase() },
      fingerprint: deps.fingerprinter(pairIdOf(deps.table, row.id))
    })
    // As for any new pair: a field the merge writes to Dynamics is left to the other direction, with no state.
    const state: Record<string, string> = { ...merged.lastSynced }
    for (const field of Object.keys(merged.writes.dynamics)) delete state[field]
    updates.push({ row, marketoId, update: { id: marketoId, ...merged.writes.marketo, [deps.mapping.deletedFlag.marketoField]: false }, state, carry: { recordId: row.id, personId: marketoId, person, fields: Object.keys(merged.writes.dynamics) } })
  }

  let converted = 0
  let refused = 0
  const states = new Map<string, LastSyncedState>()
  const results = updates.length === 0 ? [] : await deps.marketo.syncLeads('updateOnly', 'id', updates.map((entry) => entry.update))
  for (const [index, result] of results.entries()) {
    const { row, marketoId, state, carry } = updates[index]!
    if (result.status === 'skipped') {
      refused++
      deps.outcomes.parked.push(dynamicsRefusal(deps.table, row.id, [marketoId], writtenFields(updates[index]!.update), skipReasonCode(result), deps.fieldsByColumn))
      deps.logger.warn({ table: deps.table, recordId: row.id, marketoId, reasons: result.reasons?.map((r) => r.code) }, 'Marketo refused a background-sync update')
      continue
    }
    states.set(row.id, state)
    deps.outcomes.settled.push(row.id)
    if (carry.fields.length > 0) deps.outcomes.carry.push(carry)
    // The lead is no pair any more: its person follows the contact, and its later changes are settled.
    const leadId = originatingLeadOf(row.columns)
    if (leadId !== undefined) {
      await deps.pairs.forget('lead', [leadId])
      await deps.links.markConverted(leadId, row.id)
    }
    converted++
    deps.logger.info({ table: deps.table, recordId: row.id, marketoId }, 'a contact qualified from a lead follows the lead\'s Marketo person')
  }
  await deps.pairs.save(deps.table, states, undefined, { direction: 'dynamics-to-marketo' })
  return { rest, converted, refused }
}

interface UnlinkedDeliveryDeps extends DynamicsToMarketoDeliveryDeps {
  readonly fields: readonly string[]
  readonly recordType: RecordType
  readonly fieldsByColumn: ReadonlyMap<string, string>
  /** Collects the records parked and delivered, for one store call per page. */
  readonly outcomes: RecordOutcomes
}

interface UnlinkedOutcome { readonly created: number, readonly linked: number, readonly reported: number, readonly refused: number }

/**
 * Unlinked rows (issue 12 §3): one Get Leads by email per 300 emails instead of a blind
 * createOrUpdate, which would take over a person already linked to another record (a lead and a
 * contact with one email) or be refused when several persons match (1007).
 */
async function deliverUnlinkedRows (unlinked: ReadonlyArray<{ row: ChangedRow, values: Record<string, FieldValue> }>, deps: UnlinkedDeliveryDeps): Promise<UnlinkedOutcome> {
  const { table, recordType, fields } = deps
  let refused = 0
  let reported = 0
  // Without an email a record cannot be matched, and a create would be repeated each time the page
  // is delivered again (a retry after a crash): such a record is reported and left until it has one.
  const withEmail: Array<{ row: ChangedRow, values: Record<string, FieldValue>, email: string }> = []
  for (const { row, values } of unlinked) {
    const email = writableFieldValue(values.email ?? null)
    if (typeof email === 'string' && email.trim() !== '') withEmail.push({ row, values, email: emailMatchKey(email) })
    else {
      refused++
      deps.outcomes.parked.push(dynamicsRefusal(table, row.id, [], ['email'], 'NO_EMAIL', deps.fieldsByColumn))
      deps.logger.warn({ table, recordId: row.id }, 'a Dynamics record without an email is not created in Marketo')
    }
  }
  if (withEmail.length === 0) return { created: 0, linked: 0, reported, refused }

  const personsByEmail = new Map<string, Array<Record<string, unknown>>>()
  for (const person of await deps.marketo.getLeadsBy('email', [...new Set(withEmail.map((row) => row.email))], fields)) {
    if (typeof person.email !== 'string') continue
    const key = emailMatchKey(person.email)
    personsByEmail.set(key, [...personsByEmail.get(key) ?? [], person])
  }
  const personLinks = await deps.links.getMany([...personsByEmail.values()].flat().map((person) => Number(person.id)))

  const report = (row: ChangedRow, reason: UnlinkedRecordReason, marketoIds: readonly number[]): void => {
    reported++
    deps.outcomes.parked.push(dynamicsRefusal(table, row.id, marketoIds, ['email'], reason, deps.fieldsByColumn))
    // Ids and the reason only: the email is personal data.
    deps.logger.warn({ table, recordId: row.id, marketoIds, reason }, 'a Dynamics record is not synced: its email matches Marketo persons ambiguously')
  }
  // Two rows of one page with the same email: the first takes the match, the second finds it taken,
  // as it would on the next pass once the first is linked.
  const claimedEmails = new Set<string>()
  const creates: Array<{ row: ChangedRow, input: Record<string, unknown> }> = []
  const relinks: Array<{ row: ChangedRow, marketoId: number, update: Record<string, unknown>, state: Record<string, string>, carry: CarriedToDynamics }> = []
  for (const { row, values, email } of withEmail) {
    const persons = personsByEmail.get(email) ?? []
    if (claimedEmails.has(email)) {
      report(row, 'PERSON_LINKED_ELSEWHERE', persons.map((person) => Number(person.id)))
      continue
    }
    claimedEmails.add(email)
    const match = matchUnlinkedRecord(persons.map((person) => {
      const marketoId = Number(person.id)
      const link = personLinks.get(marketoId)
      return { marketoId, linked: link !== undefined && !(link.type === recordType && link.id === row.id) }
    }))
    if (match.action === 'report') { report(row, match.reason, match.marketoIds); continue }
    if (match.action === 'create') { creates.push({ row, input: nonEmptyValues(values) }); continue }
    // A new pair: no last-synced state, so a field empty on one side is filled from the other and a
    // field set on both sides to different values is a collision won by the record type's side.
    const person = persons.find((candidate) => Number(candidate.id) === match.marketoId)!
    const merged = mergeFieldChanges({
      recordType,
      fields,
      lastSynced: {},
      marketo: { values: person as Record<string, FieldValue> },
      dynamics: { values, lastModifiedByService: row.modifiedBy !== undefined && row.modifiedBy.toLowerCase() === deps.serviceUserId?.toLowerCase() },
      fingerprint: deps.fingerprinter(pairIdOf(table, row.id))
    })
    // As for a linked row: a field the merge writes to Dynamics is left to the other direction, with no state.
    const state: Record<string, string> = { ...merged.lastSynced }
    for (const field of Object.keys(merged.writes.dynamics)) delete state[field]
    // The person may carry the deleted flag of a record it followed before: it follows a live one now (§7).
    relinks.push({ row, marketoId: match.marketoId, update: { id: match.marketoId, ...merged.writes.marketo, [deps.mapping.deletedFlag.marketoField]: false }, state, carry: { recordId: row.id, personId: match.marketoId, person, fields: Object.keys(merged.writes.dynamics) } })
  }

  const states = new Map<string, LastSyncedState>()
  let linked = 0
  if (relinks.length > 0) {
    const results = await deps.marketo.syncLeads('updateOnly', 'id', relinks.map((relink) => relink.update))
    for (const [index, result] of results.entries()) {
      const { row, marketoId, state, carry } = relinks[index]!
      if (result.status === 'skipped') {
        refused++
        deps.outcomes.parked.push(dynamicsRefusal(table, row.id, [marketoId], writtenFields(relinks[index]!.update), skipReasonCode(result), deps.fieldsByColumn))
        deps.logger.warn({ table, recordId: row.id, marketoId, reasons: result.reasons?.map((r) => r.code) }, 'Marketo refused a background-sync update')
        continue
      }
      // Linked only once Marketo took the write: a retried page finds the row unlinked and decides again.
      await deps.links.set(marketoId, { type: recordType, id: row.id })
      states.set(row.id, state)
      deps.outcomes.settled.push(row.id)
      if (carry.fields.length > 0) deps.outcomes.carry.push(carry)
      linked++
    }
  }

  let created = 0
  if (creates.length > 0) {
    // createOnly: a person created by someone else since the read is refused by Marketo (1005), not merged into.
    const results = await deps.marketo.syncLeads('createOnly', 'email', creates.map((create) => create.input))
    for (const [index, result] of results.entries()) {
      const { row, input } = creates[index]!
      if (result.status === 'skipped') {
        refused++
        deps.outcomes.parked.push(dynamicsRefusal(table, row.id, [], writtenFields(input), skipReasonCode(result), deps.fieldsByColumn))
        deps.logger.warn({ table, recordId: row.id, reasons: result.reasons?.map((r) => r.code) }, 'Marketo refused a background-sync create')
        continue
      }
      created++
      deps.outcomes.settled.push(row.id)
      await deps.links.set(result.id, { type: recordType, id: row.id })
      // Only the fields sent are known equal on both sides; the others get their state on the next change.
      const fingerprint = deps.fingerprinter(pairIdOf(table, row.id))
      states.set(row.id, Object.fromEntries(Object.entries(input).map(([field, value]) => [field, fingerprint(field, value as FieldValue)])))
    }
  }
  await deps.pairs.save(table, states, undefined, { direction: 'dynamics-to-marketo' })
  return { created, linked, reported, refused }
}

/**
 * Parks the page's refused and reported records and clears the entries of those delivered, after the
 * pair states are saved: a crash before this leaves the page to be read again, which decides each
 * record afresh (a refused one is parked then, with one more attempt). A delivered record's merge
 * decided every mapped field, so it settles whatever fields its entry was parked for.
 */
async function parkRecordOutcomes (outcomes: RecordOutcomes, deps: DynamicsToMarketoDeliveryDeps & { readonly fields: readonly string[] }): Promise<void> {
  const allFields = [...deps.fields, deps.mapping.deletedFlag.marketoField, 'email']
  if (outcomes.settled.length > 0) {
    await deps.parked.settle(outcomes.settled.map((recordId) => ({ direction: 'dynamics-to-marketo', table: deps.table, recordId, fields: allFields })))
  }
  if (outcomes.parked.length === 0) return
  const { dropped } = await deps.parked.park(outcomes.parked)
  if (dropped > 0) deps.logger.warn({ dropped }, 'parked changes over the cap: the oldest were dropped')
}

/** A new person gets the record's non-empty values only: an empty Dynamics column must not blank a person Marketo matched by email. */
function nonEmptyValues (values: Readonly<Record<string, FieldValue>>): Record<string, unknown> {
  const input: Record<string, unknown> = {}
  for (const [field, value] of Object.entries(values)) {
    const writable = writableFieldValue(value)
    if (writable !== null) input[field] = writable
  }
  return input
}
