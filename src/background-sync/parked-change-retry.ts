import type { RecordLink } from '../domain/record-link.ts'
import type { PersonChanges } from '../marketo/lead-change-feed.ts'
import type { SyncTable } from '../sync/field-mapping.ts'
import { reportRefusedWrites, writePersonChanges, type LinkedPersonChanges, type MarketoChangePassDeps, type RefusedWrite } from './marketo-change-pass.ts'
import { ParkedChangeError, type MarketoParkedChange, type ParkedChangeFilter, type ParkedChangeStore } from './parked-changes.ts'

/**
 * Retrying parked changes (issue 12 §9: "a parked change can be retried once the data is fixed"),
 * as plain functions the admin API will call. A retry does not replay the refused value: it reads
 * the person's current values of the parked fields from Marketo (Get Leads by Id, 300 a call) and
 * runs them through the same merge and write as a pass (writePersonChanges), so a fix made in
 * Marketo since is what goes, and a field Dynamics changed since is decided by the collision rule.
 *
 * - Written, or nothing left to write (the values converged, or the collision rule says Marketo's
 *   value loses): the entry is cleared.
 * - Refused again: its entry is updated (attempts + 1, the new code) and the refusal written to the
 *   person's activity log, as a pass does.
 * - The record deleted in Dynamics, the person deleted in Marketo, or the person now linked to
 *   another record: nothing can be written for this pair any more, so the entry is cleared too.
 *
 * These are the Marketo → Dynamics entries; the Dynamics → Marketo ones are retried by
 * dynamics-parked-change-retry.ts, which reads the record from Dataverse instead.
 *
 * Not under the Marketo feed's lease: a retry may run beside a pass. Both write absolute values and
 * save the pair's state after Dynamics took them; the state saves are not guarded against each other
 * (the README's known limit "unguarded pair state"), as between the two directions.
 */

export type ParkedChangeRetryResult =
  | 'written'
  | 'unchanged'
  | 'refused'
  | 'record-missing'
  | 'person-missing'
  | 'relinked'

export interface ParkedChangeRetryDeps extends Pick<MarketoChangePassDeps, 'dataverse' | 'pairs' | 'mapping' | 'fingerprinter' | 'logger' | 'optionSets' | 'stateStatus' | 'failureLog' | 'now'> {
  readonly parked: Pick<ParkedChangeStore, 'get' | 'list' | 'park' | 'discard' | 'discardIfUnchanged'>
  readonly marketo: { getLeadsByIds: (ids: readonly number[], fields: readonly string[]) => Promise<Array<Record<string, unknown>>> }
  readonly links: { getMany: (marketoIds: readonly number[]) => Promise<Map<number, RecordLink>> }
}

/** Retries one parked change; throws PARKED_CHANGE_NOT_FOUND when there is no such entry. */
export async function retryParkedChange (deps: ParkedChangeRetryDeps, id: string): Promise<ParkedChangeRetryResult> {
  const entry = await deps.parked.get(id)
  if (entry === undefined) throw new ParkedChangeError('PARKED_CHANGE_NOT_FOUND', 'no parked change with this id')
  if (entry.direction !== 'marketo-to-dynamics') throw new ParkedChangeError('PARKED_CHANGE_OTHER_DIRECTION', 'a Dynamics → Marketo change: retryDynamicsParkedChange retries it')
  return (await retryEntries(deps, [entry])).get(entry.id)!
}

/** Retries every Marketo → Dynamics parked change the filter selects (all by default, at most the store's list limit); results by entry id. */
export async function retryParkedChanges (deps: ParkedChangeRetryDeps, filter: ParkedChangeFilter = {}): Promise<Map<string, ParkedChangeRetryResult>> {
  if (filter.direction !== undefined && filter.direction !== 'marketo-to-dynamics') return new Map()
  return await retryEntries(deps, await deps.parked.list({ ...filter, direction: 'marketo-to-dynamics' }))
}

async function retryEntries (deps: ParkedChangeRetryDeps, entries: readonly MarketoParkedChange[]): Promise<Map<string, ParkedChangeRetryResult>> {
  const results = new Map<string, ParkedChangeRetryResult>()
  if (entries.length === 0) return results
  const personIds = [...new Set(entries.map((entry) => entry.personId))]
  const links = await deps.links.getMany(personIds)
  const fields = [...new Set(entries.flatMap((entry) => entry.fields))]
  const persons = new Map((await deps.marketo.getLeadsByIds(personIds, fields)).map((lead) => [Number(lead.id), lead]))
  const at = (deps.now ?? (() => new Date()))()

  const refused: RefusedWrite[] = []
  for (const table of ['lead', 'contact'] as const satisfies readonly SyncTable[]) {
    const linked: LinkedPersonChanges[] = []
    const entryOf = new Map<string, MarketoParkedChange>()
    for (const entry of entries.filter((candidate) => candidate.table === table)) {
      const link = links.get(entry.personId)
      const lead = persons.get(entry.personId)
      if (link === undefined || link.type.toLowerCase() !== table || link.id.toLowerCase() !== entry.recordId) results.set(entry.id, 'relinked')
      else if (lead === undefined) results.set(entry.id, 'person-missing')
      else {
        linked.push({ recordId: entry.recordId, person: currentPersonValues(entry.personId, entry.fields, lead, at) })
        entryOf.set(entry.recordId, entry)
      }
    }
    const outcome = await writePersonChanges(deps, table, linked)
    for (const recordId of outcome.missingRecordIds) results.set(entryOf.get(recordId)!.id, 'record-missing')
    for (const recordId of outcome.written) results.set(entryOf.get(recordId.toLowerCase())!.id, 'written')
    for (const settled of outcome.settled) {
      const id = entryOf.get(settled.recordId)!.id
      if (!results.has(id)) results.set(id, 'unchanged')
    }
    for (const refusal of outcome.refused) results.set(entryOf.get(refusal.recordId.toLowerCase())!.id, 'refused')
    refused.push(...outcome.refused)
  }
  // A retry read every parked field: an entry refused again names just the fields still refused.
  await reportRefusedWrites(deps, refused, at, { retried: true })
  // Every entry that was not refused again is done with: delivered, moot, or impossible now — unless
  // a pass parked a new refusal of the record meanwhile, which stays.
  const entryById = new Map(entries.map((entry) => [entry.id, entry]))
  for (const [id, result] of results) {
    if (result !== 'refused') await deps.parked.discardIfUnchanged(entryById.get(id)!)
  }
  for (const [id, result] of results) deps.logger.info({ parkedChangeId: id, result }, 'parked change retried')
  return results
}

/**
 * A person's current values of `fields` as if just changed in Marketo by a marketer (not through the
 * API): the merge then writes them where they differ from the last-synced state, and leaves a field
 * to the collision rule where Dynamics changed it too. Retries, resyncs and new pairs use it.
 */
export function currentPersonValues (personId: number, names: readonly string[], lead: Readonly<Record<string, unknown>>, at: Date): PersonChanges {
  const changedAt = at.toISOString().replace(/\.\d{3}Z$/, 'Z')
  const fields: Record<string, PersonChanges['fields'][string]> = {}
  for (const field of names) {
    const value = lead[field]
    fields[field] = {
      value: typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' ? value : null,
      changedAt,
      madeThroughApi: false
    }
  }
  return { personId, isNew: false, createdThroughApi: false, fields }
}
