import type { Logger } from 'pino'
import type { DataverseClient } from '../dynamics/dataverse-client.ts'
import { CONTACT_TABLE, LEAD_TABLE, updateRecordsInBulk, type BulkTable, type RecordUpdate } from '../dynamics/bulk-record-update.ts'
import type { RecordLink } from '../domain/record-link.ts'
import { readLeadChanges, type LeadChangeSource, type PersonChanges } from '../marketo/lead-change-feed.ts'
import { writesToDynamics, type FieldMapping, type MarketoDataType, type SyncTable } from '../sync/field-mapping.ts'
import { mergeFieldChanges, type LastSyncedState } from '../sync/field-merge.ts'
import type { FieldFingerprinter, FieldValue } from '../sync/field-fingerprint.ts'
import { labelOf, optionValueOf, UNKNOWN_OPTION_LABEL, type OptionSets } from '../sync/option-labels.ts'
import { pairStateAndStatus, STATE_COLUMN, STATE_STATUS_MISMATCH, STATUS_COLUMN, type StateStatusOptions } from '../sync/state-status.ts'
import type { CheckpointStore } from './checkpoints.ts'
import type { FeedLeases } from './feed-lease.ts'
import { pairIdOf } from './dynamics-to-marketo-delivery.ts'
import type { PairOutcomeNote, PairStateStore } from './pair-state-store.ts'
import type { ParkedChangeStore, SettledRecord } from './parked-changes.ts'
import type { SyncFailure, SyncFailureActivityLog } from '../marketo/sync-failure-activity.ts'

/**
 * One step of the Marketo → Dynamics direction (issue 12 §2, §5, §10): read one page of Marketo's
 * lead-change feed for the mapped fields, merge each linked person's changes with the pair's
 * last-synced state and the linked record's current Dynamics values, write only what differs with
 * UpdateMultiple, save the new state, and only then save the feed's next paging token. A runner
 * stopped before that save reads the same page again; every step is idempotent per change (the
 * merge sees both sides equal the second time), so nothing is lost and nothing written twice.
 *
 * - A person with no link is skipped: the background sync never creates in Dynamics, only the flow
 *   step does (issue 12 §2; marketo-native-dynamics-sync.md §3).
 * - A field the merge would write to Marketo (a Dynamics edit, or a contact collision Dynamics won) is
 *   left to the Dynamics → Marketo direction, which will see that Dynamics change: its state stays as
 *   it was, the mirror of what dynamics-to-marketo-delivery.ts does for the other direction.
 * - A record Dynamics refuses (or whose option label has no option) is logged with the code only (no
 *   values), its state is not saved, its failure goes to the person's Marketo activity log with
 *   Dynamics' message (sync-failure-activity.ts), and it is parked with its reason
 *   (parked-changes.ts); the rest of the page goes on and the checkpoint advances past it (§9): the
 *   change is parked, not lost, and not retried by every pass. A record written fine later clears
 *   its entry when that write covered the parked fields. A page read again after a crash between
 *   parking and the checkpoint refuses the record again: one more attempt and one more activity.
 * - One pass at a time across workers: the pass holds the feed's lease from loading the checkpoint
 *   to saving it (feed-lease.ts); a pass that finds it held ends at once as skipped. The
 *   checkpoint's version stays the backstop.
 */

/** What the pass needs of Marketo: a MarketoRestClient. */
export interface MarketoChangeFeed extends LeadChangeSource {
  getActivitiesPagingToken: (since: Date) => Promise<string>
}

export interface MarketoChangePassDeps {
  readonly marketo: MarketoChangeFeed
  readonly dataverse: Pick<DataverseClient, 'retrieveMultiple' | 'updateMultiple'>
  readonly checkpoints: CheckpointStore
  readonly leases: FeedLeases
  readonly links: { getMany: (marketoIds: readonly number[]) => Promise<Map<number, RecordLink>> }
  readonly pairs: Pick<PairStateStore, 'load' | 'save'>
  readonly mapping: FieldMapping
  readonly fingerprinter: (pairId: string) => FieldFingerprinter
  readonly logger: Logger
  readonly now?: () => Date
  /** Activities per feed page; Marketo's maximum (300) by default. */
  readonly batchSize?: number
  /**
   * The option-set columns' options by table, read once at start-up (attribute-metadata.ts
   * `readTableOptionSets`): a Marketo label is written as its option value. Without them a label
   * goes to Dynamics as text, and Dynamics refuses it.
   */
  readonly optionSets?: Readonly<Partial<Record<SyncTable, OptionSets>>>
  /**
   * How each table's states and statuses go together, read at start-up with the option sets
   * (attribute-metadata.ts `readTableStateStatus`): a state or status is written as a pair
   * Dataverse accepts (state-status.ts). Without them each column is written as the merge decided.
   */
  readonly stateStatus?: Readonly<Partial<Record<SyncTable, StateStatusOptions>>>
  /** Where refused records are parked (issue 12 §9). */
  readonly parked: Pick<ParkedChangeStore, 'park' | 'settle'>
  /** The persons' Marketo activity log, where each refusal is written with Dynamics' message. */
  readonly failureLog: Pick<SyncFailureActivityLog, 'record'>
}

/**
 * A refused record as the outcome lists it. The outcome is a BullMQ job's return value, which Redis
 * keeps: ids, names and codes only, never Dynamics' message (it may quote the value).
 */
export interface RefusedRecord {
  readonly table: SyncTable
  readonly recordId: string
  readonly personId: number
  /** Dynamics' error code, e.g. `0x80044331`, or `OPTION_LABEL_UNKNOWN`. */
  readonly code: string
  readonly status?: number
  /** The Marketo fields of the refused write, and their Dataverse columns. */
  readonly fields: readonly string[]
  readonly columns: readonly string[]
}

/** A refusal with Dynamics' message, which goes to the person's activity log and nowhere else. */
export interface RefusedWrite extends RefusedRecord {
  readonly message: string
}

export type MarketoChangePassOutcome = MarketoChangePassAdvanced | {
  /** Nothing read and nothing written: another pass of the feed holds its lease. */
  readonly kind: 'skipped'
  readonly reason: 'another pass is running'
}

export interface MarketoChangePassAdvanced {
  readonly kind: 'advanced'
  readonly version: number
  /** Marketo said no more pages are ready: the feed is caught up until the next poll. */
  readonly caughtUp: boolean
  /** Persons with a mapped change in the page. */
  readonly persons: number
  /**
   * Persons with a change the sync did not make itself (issue 12 §6): one not made through the API,
   * or a value other than the pair's last-synced state; an unlinked person's changes always count.
   * Our own Dynamics → Marketo writes coming back through the feed are not counted, so they do not
   * speed polling up (marketo-change-scheduler.ts).
   */
  readonly changedOutsideSync: number
  readonly unlinked: number
  /** Linked persons whose record Dynamics no longer has (deleted there): nothing to write. */
  readonly recordMissing: number
  /** Records written, and linked persons whose changes needed no write (echoes, converged, left to the other direction). */
  readonly written: number
  readonly unchanged: number
  readonly refused: readonly RefusedRecord[]
}

export const MARKETO_CHECKPOINT = { direction: 'marketo-to-dynamics', table: 'person' } as const

const BULK_TABLES: Readonly<Record<SyncTable, BulkTable>> = { lead: LEAD_TABLE, contact: CONTACT_TABLE }

/** Ids per `$filter` request: 50 GUID comparisons keep the URL far below Dataverse's 32 KB limit. */
const IDS_PER_READ = 50

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

export interface MappedColumn {
  readonly column: string
  readonly dataType: MarketoDataType
}

/** The Marketo fields this table takes from Marketo, with their Dataverse column. */
export function dynamicsColumnsByField (mapping: FieldMapping, table: SyncTable): Map<string, MappedColumn> {
  const columns = new Map<string, MappedColumn>()
  for (const entry of mapping.fields) {
    const column = entry[table]
    if (column !== null && writesToDynamics(entry.direction)) columns.set(entry.marketoField, { column, dataType: entry.dataType })
  }
  return columns
}

/** The fields the feed is asked for: any that reaches a lead or a contact column. */
export function marketoFeedFields (mapping: FieldMapping): string[] {
  return [...new Set([...dynamicsColumnsByField(mapping, 'lead').keys(), ...dynamicsColumnsByField(mapping, 'contact').keys()])]
}

/**
 * A Marketo value as its Dataverse column takes it. The feed reports values as Marketo logged them,
 * numbers and booleans often as text (marketo-rest-and-ssfs.md §2.6); Dataverse refuses a string
 * for a numeric or boolean column, so those are converted by the mapping's data type.
 */
export function dataverseValue (value: FieldValue, dataType: MarketoDataType): FieldValue {
  if (typeof value !== 'string') return value ?? null
  if (['integer', 'score', 'float', 'currency', 'percent'].includes(dataType)) {
    const number = Number(value)
    return value.trim() !== '' && Number.isFinite(number) ? number : value
  }
  if (dataType === 'boolean' && ['true', 'false'].includes(value.toLowerCase())) return value.toLowerCase() === 'true'
  return value
}

export interface PersonMergeInput {
  readonly table: SyncTable
  readonly person: PersonChanges
  readonly columns: ReadonlyMap<string, MappedColumn>
  readonly lastSynced: LastSyncedState
  /** The linked record as Dynamics holds it now, by column. */
  readonly record: Readonly<Record<string, unknown>>
  readonly fingerprint: FieldFingerprinter
  /** The table's option-set columns: their values are compared and written as labels (option-labels.ts). */
  readonly optionSets?: OptionSets
  /** The table's states and statuses: a state or status is written as a valid pair (state-status.ts). */
  readonly stateStatus?: StateStatusOptions
}

export interface PersonMergeDecision {
  /** Dataverse columns to write; empty: nothing to write. */
  readonly columns: Record<string, unknown>
  /** The pair's state to save once the write is applied. */
  readonly state: Record<string, string>
  /**
   * Fields that cannot be written, each group with its code: a Marketo label with no option in its
   * column (UNKNOWN_OPTION_LABEL), or a state and a status that do not go together
   * (STATE_STATUS_MISMATCH: both columns). Only these are left out (and parked by the caller), their
   * state kept so they stay changes; the person's other changed fields are written. Refusing the whole
   * record would lose them: the feed moves on past this page.
   */
  readonly refused?: ReadonlyArray<{ readonly fields: readonly string[], readonly columns: readonly string[], readonly code: typeof UNKNOWN_OPTION_LABEL | typeof STATE_STATUS_MISMATCH }>
}

/**
 * Pure: what one person's page of changes means for its linked record. Only the fields that changed
 * in Marketo are merged (a field not in the page was not read on the Marketo side), so the state of
 * every other field is kept as it was.
 */
export function decidePersonChanges (input: PersonMergeInput): PersonMergeDecision {
  const fields = Object.keys(input.person.fields).filter((field) => input.columns.has(field))
  const marketoValues: Record<string, FieldValue> = {}
  for (const field of fields) marketoValues[field] = input.person.fields[field]!.value
  const dynamicsValues: Record<string, FieldValue> = {}
  for (const field of fields) {
    const column = input.columns.get(field)!.column
    const value = input.record[column] as FieldValue
    // An option-set column is compared as its label, the form Marketo holds and the fingerprints take.
    const options = input.optionSets?.[column]
    dynamicsValues[field] = options !== undefined && typeof value === 'number' ? labelOf(options, value) ?? value : value
  }
  const merged = mergeFieldChanges({
    recordType: input.table === 'lead' ? 'Lead' : 'Contact',
    fields,
    lastSynced: input.lastSynced,
    marketo: { values: marketoValues, lastModifiedByService: fields.some((field) => input.person.fields[field]!.madeThroughApi) },
    dynamics: { values: dynamicsValues },
    fingerprint: input.fingerprint
  })
  const state: Record<string, string> = { ...input.lastSynced }
  for (const field of fields) {
    if (Object.hasOwn(merged.lastSynced, field)) state[field] = merged.lastSynced[field]!
  }
  // Left to the Dynamics → Marketo direction (see the module comment): the state stays as it was.
  for (const field of Object.keys(merged.writes.marketo)) {
    if (Object.hasOwn(input.lastSynced, field)) state[field] = input.lastSynced[field]!
    else delete state[field]
  }
  const columns: Record<string, unknown> = {}
  const refusedFields: string[] = []
  const refusedColumns: string[] = []
  for (const [field, value] of Object.entries(merged.writes.dynamics)) {
    const mapped = input.columns.get(field)!
    const options = input.optionSets?.[mapped.column]
    if (options !== undefined && typeof value === 'string' && value.trim() !== '') {
      const optionValue = optionValueOf(options, value)
      if (optionValue === undefined) {
        refusedFields.push(field)
        refusedColumns.push(mapped.column)
        // Not written: its state stays as it was, so the Marketo edit is still one when it is retried.
        if (Object.hasOwn(input.lastSynced, field)) state[field] = input.lastSynced[field]!
        else delete state[field]
        continue
      }
      columns[mapped.column] = optionValue
      continue
    }
    columns[mapped.column] = options !== undefined && typeof value === 'string' ? null : dataverseValue(value, mapped.dataType)
  }
  const refused: Array<{ fields: string[], columns: string[], code: typeof UNKNOWN_OPTION_LABEL | typeof STATE_STATUS_MISMATCH }> = []
  if (refusedFields.length > 0) refused.push({ fields: refusedFields, columns: refusedColumns, code: UNKNOWN_OPTION_LABEL })
  let written = columns
  if (input.stateStatus !== undefined) {
    // A status added here to pair a state (or the reverse) is not in the saved state: Dynamics →
    // Marketo sees it as a Dynamics change and brings Marketo's other field in step.
    const paired = pairStateAndStatus({ columns, record: input.record, options: input.stateStatus })
    if ('refused' in paired) {
      // Both columns are left out, and both fields keep their state; the rest of the person's changes go.
      const pairColumns = [STATE_COLUMN, STATUS_COLUMN]
      const pairFields = fields.filter((field) => pairColumns.includes(input.columns.get(field)!.column))
      written = Object.fromEntries(Object.entries(columns).filter(([column]) => !pairColumns.includes(column)))
      for (const field of pairFields) {
        if (Object.hasOwn(input.lastSynced, field)) state[field] = input.lastSynced[field]!
        else delete state[field]
      }
      refused.push({ fields: pairFields, columns: pairColumns, code: paired.refused.code })
    } else {
      written = paired.columns
    }
  }
  return refused.length === 0 ? { columns: written, state } : { columns: written, state, refused }
}

/**
 * Pure: whether a person's changes in the page are the sync's own writes coming back (issue 12 §6):
 * every change made through the API, to the value the pair's last-synced state holds. A field
 * never synced has no state, so its change is not an echo.
 */
export function isOwnEcho (person: PersonChanges, fields: readonly string[], lastSynced: LastSyncedState, fingerprint: FieldFingerprinter): boolean {
  return fields.every((field) => {
    const change = person.fields[field]!
    return change.madeThroughApi && Object.hasOwn(lastSynced, field) && fingerprint(field, change.value) === lastSynced[field]
  })
}

export async function runMarketoChangePass (deps: MarketoChangePassDeps): Promise<MarketoChangePassOutcome> {
  const leased = await deps.leases.run(MARKETO_CHECKPOINT, async (leaseLost) => await runLeasedPass(deps, leaseLost))
  return leased.kind === 'ran' ? leased.value : leased
}

async function runLeasedPass (deps: MarketoChangePassDeps, leaseLost: AbortSignal): Promise<MarketoChangePassAdvanced> {
  let checkpoint = await deps.checkpoints.load(MARKETO_CHECKPOINT)
  if (checkpoint.cursor === undefined) {
    // A new sync starts from now, as Marketo's native sync does once connected: the feed holds every
    // person's history, and replaying it would write years of old edits over current Dynamics data.
    // Saved at once (it covers no work): a pass that fails later still resumes from this moment.
    const token = await deps.marketo.getActivitiesPagingToken((deps.now ?? (() => new Date()))())
    checkpoint = await deps.checkpoints.save(MARKETO_CHECKPOINT, checkpoint.version, token)
  }
  const read = await readLeadChanges(deps.marketo, {
    pageToken: checkpoint.cursor!,
    fields: marketoFeedFields(deps.mapping),
    ...(deps.batchSize === undefined ? {} : { batchSize: deps.batchSize })
  })
  const changed = read.persons.filter((person) => Object.keys(person.fields).length > 0)
  const links = await deps.links.getMany(changed.map((person) => person.personId))

  // A lease lost while reading (this process paused past its TTL): another pass may be writing this
  // page now, so this one stops before writing anything.
  leaseLost.throwIfAborted()
  let recordMissing = 0
  let written = 0
  let unchanged = 0
  let changedOutsideSync = 0
  const refused: RefusedWrite[] = []
  const settled: SettledRecord[] = []
  for (const table of ['lead', 'contact'] as const) {
    const persons = changed.flatMap((person) => {
      const link = links.get(person.personId)
      return link !== undefined && link.type.toLowerCase() === table && GUID.test(link.id) ? [{ person, recordId: link.id.toLowerCase() }] : []
    })
    const outcome = await writePersonChanges(deps, table, persons)
    recordMissing += outcome.missingRecordIds.length
    written += outcome.written.length
    unchanged += outcome.unchanged
    changedOutsideSync += outcome.changedOutsideSync
    refused.push(...outcome.refused)
    settled.push(...outcome.settled)
  }
  const unlinked = changed.filter((person) => !links.has(person.personId)).length
  // An unlinked person has no last-synced state: its change cannot be an echo of ours.
  changedOutsideSync += unlinked
  await reportRefusedWrites(deps, refused, (deps.now ?? (() => new Date()))())
  await deps.parked.settle(settled)

  const saved = await deps.checkpoints.save(MARKETO_CHECKPOINT, checkpoint.version, read.nextPageToken)
  return { kind: 'advanced', version: saved.version, caughtUp: !read.moreResult, persons: changed.length, changedOutsideSync, unlinked, recordMissing, written, unchanged, refused: refused.map(withoutMessage) }
}

function withoutMessage ({ message: _message, ...record }: RefusedWrite): RefusedRecord {
  return record
}

/** A person's changes and the Dynamics record it is linked to (lower-case GUID). */
export interface LinkedPersonChanges {
  readonly person: PersonChanges
  readonly recordId: string
}

export type PersonChangeWriteDeps = Pick<MarketoChangePassDeps, 'dataverse' | 'pairs' | 'mapping' | 'fingerprinter' | 'logger' | 'optionSets' | 'stateStatus'>

export interface PersonChangeWriteOutcome {
  /** Ids written. */
  readonly written: readonly string[]
  /** Records whose changes needed no write (echoes, converged, left to the other direction). */
  readonly unchanged: number
  /** Persons whose changes were not the sync's own writes coming back (isOwnEcho). */
  readonly changedOutsideSync: number
  /** Linked records Dynamics no longer has (deleted there): nothing to write. */
  readonly missingRecordIds: readonly string[]
  readonly refused: readonly RefusedWrite[]
  /** Records written or needing no write, with the fields their merge decided: these clear parked entries. */
  readonly settled: readonly SettledRecord[]
}

/**
 * The write half of a pass for one table, shared with the retry of parked changes
 * (parked-change-retry.ts), so a retried change goes through the very merge and write a pass uses:
 * read the linked records' current values, merge each person's changes with the pair's last-synced
 * state (decidePersonChanges), write what differs with UpdateMultiple, save the states of what
 * Dynamics took. Refusals are returned, not reported: the caller parks them.
 */
export async function writePersonChanges (deps: PersonChangeWriteDeps, table: SyncTable, persons: readonly LinkedPersonChanges[]): Promise<PersonChangeWriteOutcome> {
  if (persons.length === 0) return { written: [], unchanged: 0, changedOutsideSync: 0, missingRecordIds: [], refused: [], settled: [] }
  const columns = dynamicsColumnsByField(deps.mapping, table)
  const records = await readRecords(deps.dataverse, BULK_TABLES[table], [...new Set(persons.map((p) => p.recordId))], [...columns.values()].map((c) => c.column))
  const states = await deps.pairs.load(table, persons.map((p) => p.recordId))

  // A person changed twice in one page is folded into one entry by readLeadChanges; two persons
  // linked to one record (not made by our links) would be two targets: the later one wins.
  const decisions = new Map<string, { decision: PersonMergeDecision, person: PersonChanges }>()
  const missingRecordIds: string[] = []
  let changedOutsideSync = 0
  for (const { person, recordId } of persons) {
    const fields = Object.keys(person.fields).filter((field) => columns.has(field))
    if (!isOwnEcho(person, fields, states.get(recordId) ?? {}, deps.fingerprinter(pairIdOf(table, recordId)))) changedOutsideSync++
    const record = records.get(recordId)
    if (record === undefined) { missingRecordIds.push(recordId); continue }
    decisions.set(recordId, {
      person,
      decision: decidePersonChanges({
        table,
        person,
        columns,
        lastSynced: states.get(recordId) ?? {},
        record,
        fingerprint: deps.fingerprinter(pairIdOf(table, recordId)),
        ...(deps.optionSets?.[table] === undefined ? {} : { optionSets: deps.optionSets[table] }),
        ...(deps.stateStatus?.[table] === undefined ? {} : { stateStatus: deps.stateStatus[table] })
      })
    })
  }
  const mergedFields = (person: PersonChanges) => Object.keys(person.fields).filter((field) => columns.has(field))
  const refused: RefusedWrite[] = []
  for (const [recordId, { decision, person }] of decisions) {
    if (decision.refused === undefined) continue
    for (const refusal of decision.refused) {
      const pairRefused = refusal.code === STATE_STATUS_MISMATCH
      // The columns and the code only: the label Marketo holds is the person's data. The record's other
      // changed fields are still written below; only these are parked.
      deps.logger.warn({ table, recordId, columns: refusal.columns, code: refusal.code }, pairRefused
        ? 'a Marketo status reason does not belong to its status in Dynamics'
        : 'a Marketo value has no option in its Dynamics option set')
      refused.push({
      table,
      recordId,
      personId: person.personId,
      code: refusal.code,
      fields: [...refusal.fields],
      columns: [...refusal.columns],
      // Ours, not Dynamics': it names the columns and never the labels.
      message: pairRefused
        ? `The status reason ('${STATUS_COLUMN}') does not belong to the status ('${STATE_COLUMN}') in Dynamics: Dynamics accepts only a status reason of the record's status.`
        : `The value has no matching option in the Dynamics option set of the column${refusal.columns.length > 1 ? 's' : ''} ${refusal.columns.map((column) => `'${column}'`).join(', ')}.`
      })
    }
  }

  const updates: RecordUpdate[] = [...decisions].filter(([, d]) => Object.keys(d.decision.columns).length > 0).map(([id, d]) => ({ id, columns: d.decision.columns }))
  const outcome = await updateRecordsInBulk(deps.dataverse, BULK_TABLES[table], updates)
  const rejectedIds = new Set(outcome.rejected.map((rejection) => rejection.id))
  for (const rejection of outcome.rejected) {
    if (rejection.error.status === 404) {
      // Deleted in Dynamics between the read and the write: nothing to park or retry; the Dynamics →
      // Marketo direction sees the delete and flags the person.
      missingRecordIds.push(rejection.id)
      continue
    }
    // Which record and Dynamics' code only: the message may quote the refused value.
    deps.logger.warn({ table, recordId: rejection.id, code: rejection.error.code, status: rejection.error.status }, 'Dynamics refused a background-sync update')
    const { decision, person } = decisions.get(rejection.id)!
    const writtenColumns = new Set(Object.keys(decision.columns))
    refused.push({
      table,
      recordId: rejection.id,
      personId: person.personId,
      code: rejection.error.code,
      status: rejection.error.status,
      fields: mergedFields(person).filter((field) => writtenColumns.has(columns.get(field)!.column)),
      columns: [...writtenColumns],
      message: rejection.error.message
    })
  }
  const accepted = [...decisions].filter(([id]) => !rejectedIds.has(id))
  // What this direction decided about each pair, for its sync record (pair-state-store.ts): codes only.
  const writtenIds = new Set(outcome.written.map((id) => id.toLowerCase()))
  // A missing record gets none: its pair is about to go (the deleted-record handling forgets it).
  const pairOutcomes = new Map<string, PairOutcomeNote>()
  for (const refusal of refused) pairOutcomes.set(refusal.recordId.toLowerCase(), { outcome: 'refused', code: refusal.code })
  for (const [id] of accepted) if (!pairOutcomes.has(id)) pairOutcomes.set(id, { outcome: writtenIds.has(id.toLowerCase()) ? 'written' : 'unchanged' })
  await deps.pairs.save(table, new Map(accepted.map(([id, d]) => [id, d.decision.state])), states, { direction: 'marketo-to-dynamics', outcomes: pairOutcomes })
  return {
    written: outcome.written,
    unchanged: decisions.size - updates.length,
    changedOutsideSync,
    missingRecordIds,
    refused,
    // A field left out for want of an option is not settled: its parked entry stays.
    settled: accepted.map(([recordId, d]) => ({ direction: 'marketo-to-dynamics', table, recordId, fields: mergedFields(d.person).filter((field) => !(d.decision.refused?.some((refusal) => refusal.fields.includes(field)) ?? false)) }))
  }
}

/**
 * Refused writes are written to the persons' activity logs (one Add Custom Activities call per 300),
 * then parked with whether their activity landed. Marketo failing to take the activities (its budget
 * spent, an outage) does not stop the pass: the change is parked either way, which is what keeps it
 * from being lost, and a retry refused again writes a fresh activity.
 */
export async function reportRefusedWrites (
  deps: Pick<MarketoChangePassDeps, 'failureLog' | 'logger'> & { readonly parked: Pick<ParkedChangeStore, 'park'> },
  refused: readonly RefusedWrite[],
  at: Date,
  options: { readonly retried?: boolean } = {}
): Promise<void> {
  if (refused.length === 0) return
  let logged: ReadonlySet<number> = new Set()
  try {
    const failures: SyncFailure[] = refused.map((r) => ({ personId: r.personId, table: r.table, recordId: r.recordId, code: r.code, message: r.message, fields: r.fields, at }))
    const outcome = await deps.failureLog.record(failures)
    logged = outcome.logged
    for (const skipped of outcome.skipped) deps.logger.warn({ personId: skipped.personId, code: skipped.code }, 'Marketo did not add a sync failure to the person\'s activity log')
  } catch (error) {
    deps.logger.warn({ code: (error as { code?: unknown }).code, failures: refused.length }, 'the sync failures could not be written to the persons\' activity logs')
  }
  const { dropped } = await deps.parked.park(refused.map((r) => ({
    direction: 'marketo-to-dynamics' as const,
    table: r.table,
    recordId: r.recordId,
    personId: r.personId,
    fields: r.fields,
    columns: r.columns,
    code: r.code,
    ...(r.status === undefined ? {} : { status: r.status }),
    activityLogged: logged.has(r.personId)
  })), at, { replaceFields: options.retried === true })
  if (dropped > 0) deps.logger.warn({ dropped }, 'parked changes over the cap: the oldest were dropped')
}

/** The linked records as Dynamics holds them now, one `$filter` request per 50 ids, by lower-case id. */
async function readRecords (
  client: Pick<DataverseClient, 'retrieveMultiple'>,
  table: BulkTable,
  ids: readonly string[],
  columns: readonly string[]
): Promise<Map<string, Record<string, unknown>>> {
  const records = new Map<string, Record<string, unknown>>()
  for (let start = 0; start < ids.length; start += IDS_PER_READ) {
    const chunk = ids.slice(start, start + IDS_PER_READ)
    // GUIDs unquoted, as OData writes them; each id was checked against the GUID form above.
    const rows = await client.retrieveMultiple<Record<string, unknown>>(table.entitySet, {
      select: [table.primaryKey, ...columns],
      filter: chunk.map((id) => `${table.primaryKey} eq ${id}`).join(' or ')
    })
    for (const row of rows) records.set(String(row[table.primaryKey]).toLowerCase(), row)
  }
  return records
}
