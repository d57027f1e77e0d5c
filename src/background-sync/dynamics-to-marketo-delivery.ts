import type { Logger } from 'pino'
import type { ChangedRow } from '../dynamics/table-changes.ts'
import type { SyncLeadResult, SyncLeadsAction } from '../marketo/marketo-rest-client.ts'
import { writesToMarketo, type FieldMapping, type SyncTable } from '../sync/field-mapping.ts'
import { mergeFieldChanges, type LastSyncedState } from '../sync/field-merge.ts'
import { canonicalFieldValue, writableFieldValue, type FieldFingerprinter, type FieldValue } from '../sync/field-fingerprint.ts'
import { labelledColumns } from '../sync/option-labels.ts'
import type { DeliveredPage } from './dynamics-change-pass.ts'
import type { PairStateStore } from './pair-state-store.ts'

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
 * - A row not linked: createOrUpdate by email, then linked to the person Marketo answers.
 * - A deleted row: its linked person's deleted flag is set; the person is never deleted (§7).
 */

export interface MarketoPersonWriter {
  getLeadsByIds (ids: readonly number[], fields: readonly string[]): Promise<Array<Record<string, unknown>>>
  syncLeads (action: SyncLeadsAction, lookupField: string, input: ReadonlyArray<Readonly<Record<string, unknown>>>): Promise<SyncLeadResult[]>
}

export interface PersonLinker {
  set (marketoId: number, link: { type: 'Lead' | 'Contact', id: string }): Promise<void>
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
  readonly logger: Logger
}

export interface DeliveryOutcome {
  readonly created: number
  readonly updated: number
  readonly unchanged: number
  readonly flaggedDeleted: number
  /** Records Marketo refused (reason codes only: no personal data in logs). */
  readonly refused: number
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

  const linked = await pairs.linkedPersons(table, [...page.upserted.map((row) => row.id), ...page.deletedIds])
  const states = await pairs.load(table, page.upserted.filter((row) => linked.has(row.id)).map((row) => row.id))

  let unchanged = 0
  const changedLinked: Array<{ row: ChangedRow, marketoId: number, values: Record<string, FieldValue> }> = []
  const unlinked: Array<{ row: ChangedRow, values: Record<string, FieldValue> }> = []
  for (const row of page.upserted) {
    const values = mappedValues(row, fieldsByColumn, labelled)
    const marketoId = linked.get(row.id)
    if (marketoId === undefined) { unlinked.push({ row, values }); continue }
    if (matchesLastSynced(values, states.get(row.id) ?? {}, deps.fingerprinter(pairIdOf(table, row.id)))) {
      unchanged++
      continue
    }
    changedLinked.push({ row, marketoId, values })
  }

  // Linked rows: read the persons as they are now, so a Marketo edit since the last sync is merged, not overwritten.
  const persons = new Map<number, Record<string, unknown>>()
  if (changedLinked.length > 0) {
    for (const person of await deps.marketo.getLeadsByIds(changedLinked.map((c) => c.marketoId), fields)) persons.set(Number(person.id), person)
  }
  const updates: Array<Record<string, unknown>> = []
  /** The record each update of a linked row is for, by index; deleted-flag updates come after them. */
  const updatedRows: string[] = []
  const newStates = new Map<string, LastSyncedState>()
  for (const { row, marketoId, values } of changedLinked) {
    const person = persons.get(marketoId)
    const base = states.get(row.id) ?? {}
    const fingerprint = deps.fingerprinter(pairIdOf(table, row.id))
    const merged = mergeFieldChanges({
      recordType,
      fields,
      lastSynced: base,
      marketo: person === undefined ? undefined : { values: person as Record<string, FieldValue> },
      dynamics: { values, lastModifiedByService: row.modifiedBy !== undefined && row.modifiedBy.toLowerCase() === deps.serviceUserId?.toLowerCase() },
      fingerprint
    })
    // A field the merge would write to Dynamics (a Marketo edit, or a collision Marketo won) is left
    // to the Marketo → Dynamics direction: its state stays as it was, so that direction still sees
    // the Marketo edit as one, and this direction does not carry the Dynamics value over it.
    const state: Record<string, string> = { ...merged.lastSynced }
    for (const field of Object.keys(merged.writes.dynamics)) {
      if (Object.hasOwn(base, field)) state[field] = base[field]!
      else delete state[field]
    }
    newStates.set(row.id, state)
    if (Object.keys(merged.writes.marketo).length > 0) {
      updates.push({ id: marketoId, ...merged.writes.marketo })
      updatedRows.push(row.id)
    }
  }

  // Deleted rows: the person stays, flagged (marketo-native-dynamics-sync.md §7).
  const deletedFlag = deps.mapping.deletedFlag.marketoField
  let flaggedDeleted = 0
  for (const id of page.deletedIds) {
    const marketoId = linked.get(id)
    if (marketoId === undefined) continue
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
    if (recordId !== undefined) newStates.delete(recordId)
    // Which record and Marketo's reason code only: values are personal data.
    deps.logger.warn({ table, marketoId: updates[index]?.id, reasons: result.reasons?.map((r) => r.code) }, 'Marketo refused a background-sync update')
  })
  await pairs.save(table, newStates)

  // Unlinked rows: §3's duplicate rule goes here — link to the one unlinked Marketo person with that
  // email, create nothing and report when several have it. Until then createOrUpdate by email
  // links to whichever person Marketo matches (and Marketo refuses, 1007, when several do).
  let created = 0
  // Without an email, createOrUpdate by email creates a person every time the page is delivered again
  // (a retry after a crash): such a record is reported and left until it has one.
  const withEmail = unlinked.filter(({ row, values }) => {
    if (writableFieldValue(values.email ?? null) !== null) return true
    refused++
    deps.logger.warn({ table, recordId: row.id }, 'a Dynamics record without an email is not created in Marketo')
    return false
  })
  if (withEmail.length > 0) {
    const input = withEmail.map(({ values }) => nonEmptyValues(values))
    const results = await deps.marketo.syncLeads('createOrUpdate', 'email', input)
    const createdStates = new Map<string, LastSyncedState>()
    for (const [index, result] of results.entries()) {
      const { row } = withEmail[index]!
      if (result.status === 'skipped') {
        refused++
        deps.logger.warn({ table, recordId: row.id, reasons: result.reasons?.map((r) => r.code) }, 'Marketo refused a background-sync create')
        continue
      }
      if (result.status === 'created') created++
      await deps.links.set(result.id, { type: recordType, id: row.id })
      // Only the fields sent are known equal on both sides; the others get their state on the next change.
      const fingerprint = deps.fingerprinter(pairIdOf(table, row.id))
      createdStates.set(row.id, Object.fromEntries(Object.entries(input[index]!).map(([field, value]) => [field, fingerprint(field, value as FieldValue)])))
    }
    await pairs.save(table, createdStates)
  }

  return { created, updated: updateResults.filter((result, index) => index < updatedRows.length && result.status !== 'skipped').length, unchanged, flaggedDeleted, refused }
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
