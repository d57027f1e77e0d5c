import type { Logger } from 'pino'
import type { PersonOutcome } from '../queue/payloads.ts'
import type { FlowStepPerson, PersonFields } from '../domain/person.ts'
import type { RecordLink } from '../domain/record-link.ts'
import type { RecordLinkStore } from '../links/record-link-store.ts'
import type { ClaimResult, EmailClaims } from './email-claims.ts'
import type { EmailMatches, PersonRecords } from '../dynamics/person-records.ts'
import { MARKETO_PERSON_FIELDS, normaliseEmail, toDynamicsRecord } from '../sync/person-field-mapping.ts'
import {
  checkAssignTo, claimFailed, claimLost, confirmedLink, createFailed, decideRecordAction, emailForLookUp, failure,
  fieldsAfterMarketoRead, lookUpFailed, needsMarketoRead, uniquePersons, verdictsForRecord,
  type MarketoRead, type PersonFailure, type PersonVerdict
} from './person-decisions.ts'

/**
 * "Sync Person to Microsoft" for one invocation's persons: create the person in Dynamics if no
 * lead or contact exists for them, do nothing if one does (marketo-native-dynamics-sync.md §3,
 * §10). Each person gets an outcome; one person's failure never fails the others.
 *
 * Order of look-ups, cheapest and most certain first:
 *   1. the person ⇄ record link (Redis), confirmed in Dynamics by id — a record deleted in
 *      Dynamics is created anew, as the native step does;
 *   2. leads and contacts with the person's email, batched;
 *   3. for the rest, an atomic claim per email decides which worker creates (email-claims.ts).
 * Persons whose invocation carried no email are read from Marketo in one batched REST call.
 * Every decision is a pure function of person-decisions.ts; this file only loads, acts and records.
 */

export interface PersonDirectory {
  getLeadsByIds (ids: readonly number[], fields: readonly string[]): Promise<Array<Record<string, unknown>>>
}

export interface SyncPersonBatchDeps {
  readonly records: PersonRecords
  readonly marketo: PersonDirectory
  readonly links: RecordLinkStore
  readonly claims: EmailClaims
  readonly logger: Logger
}

/** An outcome the job may retry (Dynamics or Marketo unavailable), rather than report as final. */
export interface BatchOutcome extends PersonOutcome {
  readonly retryable?: boolean
}

/** Emails created at once per batch; the Dataverse client's own limit bounds requests further. */
const CREATES_IN_PARALLEL = 8

interface Candidate { readonly person: FlowStepPerson, readonly fields: PersonFields }

/**
 * Load, decide (person-decisions.ts), act, record. Throws only when a look-up for the whole batch
 * fails (the job then retries the batch); every other failure is one person's outcome.
 */
export async function syncPersonBatch (
  invocationId: string,
  persons: readonly FlowStepPerson[],
  deps: SyncPersonBatchDeps,
  /** Aborted when the worker shuts down: no further create starts, and the rest are left retryable. */
  shuttingDown?: AbortSignal
): Promise<BatchOutcome[]> {
  const outcomes = new Map<number, BatchOutcome>()
  const decide = (marketoId: number, verdict: PersonVerdict) => { outcomes.set(marketoId, toOutcome(marketoId, verdict)) }

  const pending: FlowStepPerson[] = []
  for (const person of uniquePersons(persons)) {
    const invalid = checkAssignTo(person.assignTo)
    if (invalid === undefined) pending.push(person)
    else decide(person.marketoId, invalid)
  }

  const candidates = await completeFromMarketo(pending, deps, decide)

  // 1. Linked records, confirmed by id. One this invocation created on an earlier try (the try
  // ended before its outcome was saved) is still reported created.
  const links = await deps.links.getMany([...candidates.keys()])
  const confirmed = new Map<number, RecordLink>()
  for (const type of ['Lead', 'Contact'] as const) {
    const linked = [...links].filter(([, link]) => link.type === type)
    if (linked.length === 0) continue
    const existing = await deps.records.existingIds(type, linked.map(([, link]) => link.id))
    for (const [marketoId, link] of linked) {
      if (confirmedLink(link, existing) !== undefined) confirmed.set(marketoId, link)
      else await deps.links.remove(marketoId, link)
    }
  }
  const linkedByEmail = new Map<string, RecordLink>()
  for (const [marketoId, link] of confirmed) {
    const email = normaliseEmail(candidates.get(marketoId)?.fields.email)
    if (email !== undefined) linkedByEmail.set(email, link)
  }
  const ownLinked = await deps.claims.settleOwnCreations(linkedByEmail, invocationId)
  for (const [marketoId, link] of confirmed) {
    const email = normaliseEmail(candidates.get(marketoId)?.fields.email)
    const [verdict] = verdictsForRecord(link, 1, email !== undefined && ownLinked.delete(email))
    decide(marketoId, verdict!)
    candidates.delete(marketoId)
  }

  const byEmail = new Map<string, Candidate[]>()
  for (const [marketoId, candidate] of candidates) {
    const checked = emailForLookUp(candidate.fields)
    if ('kind' in checked) {
      decide(marketoId, checked)
      continue
    }
    const group = byEmail.get(checked.email) ?? []
    group.push(candidate)
    byEmail.set(checked.email, group)
  }

  // 2. Existing leads and contacts by email. The claim generations are read first: a claim taken
  // after this look-up means the look-up may be stale for that email (email-claims.ts).
  const generations = await deps.claims.generations([...byEmail.keys()])
  const matches = byEmail.size === 0 ? new Map<string, EmailMatches>() : await deps.records.findByEmails([...byEmail.keys()])
  const found = new Map<string, RecordLink>()
  for (const [email, match] of matches) {
    const action = decideRecordAction({ byEmail: match })
    if (action.kind === 'use') found.set(email, action.record)
  }
  // A record this invocation created on an earlier try whose answer never came (a timeout, a
  // crash) is reported created, as if the answer had arrived.
  const ownCreations = await deps.claims.settleOwnCreations(found, invocationId)
  for (const [email, record] of found) {
    const group = byEmail.get(email) ?? []
    const verdicts = verdictsForRecord(record, group.length, ownCreations.has(email))
    for (const [index, { person }] of group.entries()) {
      await deps.links.set(person.marketoId, record)
      decide(person.marketoId, verdicts[index]!)
    }
    byEmail.delete(email)
  }

  // 3. Create what is missing; one creator per email across all workers. A few emails at a time:
  // a claim is held only while its email is being worked on, not while it queues.
  const groups = [...byEmail]
  const createOne = async () => {
    for (let next = groups.shift(); next !== undefined; next = groups.shift()) {
      const [email, group] = next
      const verdicts = shuttingDown?.aborted === true
        ? group.map(() => failure('HANDED_BACK', 'the worker shut down before this person was created; another worker takes it', true))
        : await createForEmail(invocationId, email, generations.get(email) ?? 0, group, deps)
      for (const [index, { person }] of group.entries()) decide(person.marketoId, verdicts[index]!)
    }
  }
  await Promise.all(Array.from({ length: Math.min(CREATES_IN_PARALLEL, groups.length) }, createOne))

  const result = uniquePersons(persons).map((person) =>
    outcomes.get(person.marketoId) ?? toOutcome(person.marketoId, failure('INTERNAL', 'no outcome was decided')))
  // Persons left undecided by a shutdown are handed to another worker, not failed: counted apart.
  const handedBack = result.filter((o) => o.kind === 'failed' && o.errorCode === 'HANDED_BACK').length
  deps.logger.info({
    invocationId,
    persons: persons.length,
    created: result.filter((o) => o.kind === 'created').length,
    existed: result.filter((o) => o.kind === 'existed').length,
    failed: result.filter((o) => o.kind === 'failed').length - handedBack,
    ...(handedBack > 0 ? { handedBack } : {})
  }, handedBack > 0 ? 'flow-step batch handed back in part' : 'flow-step batch synced')
  return result
}

/** Fills in persons whose invocation lacked an email (fields not mapped in Marketo) from Marketo's REST API. */
async function completeFromMarketo (
  persons: readonly FlowStepPerson[],
  deps: SyncPersonBatchDeps,
  decide: (marketoId: number, verdict: PersonVerdict) => void
): Promise<Map<number, Candidate>> {
  const ready = new Map<number, Candidate>()
  const incomplete = persons.filter((person) => needsMarketoRead(person.fields))
  for (const person of persons) if (!needsMarketoRead(person.fields)) ready.set(person.marketoId, { person, fields: person.fields })
  if (incomplete.length === 0) return ready
  let read: (person: FlowStepPerson) => MarketoRead
  try {
    const leads = await deps.marketo.getLeadsByIds(incomplete.map((p) => p.marketoId), MARKETO_PERSON_FIELDS)
    const byId = new Map(leads.map((lead) => [Number(lead.id), lead]))
    read = (person) => {
      const found = byId.get(person.marketoId)
      return found === undefined ? { kind: 'not-found' } : { kind: 'found', person: found }
    }
  } catch (error) {
    deps.logger.warn({ err: error, persons: incomplete.length }, 'reading persons from Marketo failed')
    read = () => ({ kind: 'unavailable', message: (error as Error).message })
  }
  for (const person of incomplete) {
    const completed = fieldsAfterMarketoRead(person.fields, read(person))
    if ('kind' in completed) decide(person.marketoId, completed)
    else ready.set(person.marketoId, { person, fields: completed.fields })
  }
  return ready
}

/**
 * Creates the record for one email, as the one creator across all workers (email-claims.ts), and
 * answers a verdict per person of the group, in order. Never throws: whatever goes wrong becomes
 * each person's verdict, retryable when a later try may succeed.
 */
async function createForEmail (
  invocationId: string,
  email: string,
  lookedUpAtGeneration: number,
  group: readonly Candidate[],
  deps: SyncPersonBatchDeps
): Promise<PersonVerdict[]> {
  const [first] = group
  if (first === undefined) return []
  const everyone = (verdict: PersonFailure): PersonVerdict[] => group.map(() => verdict)
  const linkEveryone = async (record: RecordLink, createdHere: boolean): Promise<PersonVerdict[]> => {
    for (const { person } of group) await deps.links.set(person.marketoId, record)
    return verdictsForRecord(record, group.length, createdHere)
  }

  let claim: ClaimResult
  try {
    claim = await deps.claims.claim(email, invocationId, lookedUpAtGeneration)
  } catch (error) {
    return everyone(claimFailed(error))
  }
  if (claim.kind === 'created-by-other') {
    const { type, id } = claim.record
    try {
      return await linkEveryone({ type, id }, claim.record.invocationId === invocationId)
    } catch (error) {
      return everyone(failure('LINK_FAILED', (error as Error).message, true))
    }
  }

  // Before the create, every failure is of a read or of the claim: nothing was sent that could
  // have created a record, so the claim is handed back at once — a later claimant must not wait
  // out its TTL for a record that cannot exist.
  let foundOnSecondLook: RecordLink | undefined
  try {
    if (claim.mustLookUpAgain) {
      const action = decideRecordAction({ byEmail: (await deps.records.findByEmails([email])).get(email) })
      if (action.kind === 'use') {
        await claim.release(action.record, { created: false })
        foundOnSecondLook = action.record
      }
    }
  } catch (error) {
    await claim.release().catch(() => undefined)
    deps.logger.warn({ err: error, invocationId, persons: group.length }, 'looking a person up again before creating failed')
    return everyone(lookUpFailed(error))
  }
  if (foundOnSecondLook !== undefined) {
    // Found, and the claim released with it: a failure to link now is not a failed look-up.
    try {
      return await linkEveryone(foundOnSecondLook, false)
    } catch (error) {
      return everyone(failure('LINK_FAILED', (error as Error).message, true))
    }
  }
  try {
    if (!await claim.confirm()) {
      await claim.release()
      return everyone(claimLost())
    }
  } catch (error) {
    await claim.release().catch(() => undefined)
    return everyone(claimFailed(error))
  }

  let record: RecordLink
  try {
    record = await deps.records.create(first.person.syncAs, toDynamicsRecord(first.fields, first.person.syncAs, first.person.assignTo))
  } catch (error) {
    const { verdict, claim: next } = createFailed(error)
    if (next === 'release') await claim.release().catch(() => undefined)
    // Unknown outcome (timeout, outage): leave the claim to lapse, so whoever claims next looks
    // the email up before creating; this invocation's retry recognises its own record.
    else claim.abandon()
    if (verdict.retryable) deps.logger.warn({ err: error, invocationId, persons: group.length }, 'creating a Dynamics record did not complete')
    return everyone(verdict)
  }
  try {
    await claim.release(record, { created: true })
    return await linkEveryone(record, true)
  } catch (error) {
    // The record exists; only remembering it failed. The retry finds it by email and, by the
    // claim or the remembered record, knows this invocation created it.
    claim.abandon()
    deps.logger.warn({ err: error, invocationId, persons: group.length }, 'recording a created Dynamics record failed')
    return everyone(failure('SYNC_INTERRUPTED', `the record was created but not recorded: ${(error as Error).message}`, true))
  }
}

function toOutcome (marketoId: number, verdict: PersonVerdict): BatchOutcome {
  if (verdict.kind === 'failed') {
    const outcome = { marketoId, kind: verdict.kind, errorCode: verdict.errorCode, reason: verdict.reason }
    return verdict.retryable ? { ...outcome, retryable: true } : outcome
  }
  return { marketoId, kind: verdict.kind, recordType: verdict.record.type, recordId: verdict.record.id }
}
