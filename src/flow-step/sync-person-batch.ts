import type { Logger } from 'pino'
import type { PersonOutcome } from '../queue/payloads.ts'
import type { FlowStepPerson, PersonFields } from '../domain/person.ts'
import type { RecordLink } from '../domain/record-link.ts'
import type { RecordLinkStore } from '../links/record-link-store.ts'
import type { PersonRecords } from '../dynamics/person-records.ts'
import type { ClaimResult, EmailClaims } from './email-claims.ts'
import { DataverseError, DataverseUnavailableError } from '../dynamics/dataverse-errors.ts'
import { MARKETO_PERSON_FIELDS, normaliseEmail, toDynamicsRecord } from '../sync/person-field-mapping.ts'

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

/** emailaddress1's maximum length in Dataverse (reference §7); longer cannot exist there. */
const DYNAMICS_EMAIL_MAX_LENGTH = 100
/** Emails created at once per batch; the Dataverse client's own limit bounds requests further. */
const CREATES_IN_PARALLEL = 8

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

export async function syncPersonBatch (
  invocationId: string,
  persons: readonly FlowStepPerson[],
  deps: SyncPersonBatchDeps
): Promise<BatchOutcome[]> {
  const outcomes = new Map<number, BatchOutcome>()
  const pending = new Map<number, FlowStepPerson>()
  for (const person of persons) {
    // A person listed twice in one invocation is synced and reported once.
    if (pending.has(person.marketoId) || outcomes.has(person.marketoId)) continue
    if (person.assignTo !== undefined && !GUID.test(person.assignTo)) {
      outcomes.set(person.marketoId, failed(person, 'INVALID_ASSIGN_TO', 'Assign To is not a Dynamics user id; choose the user again in the flow step'))
    } else {
      pending.set(person.marketoId, person)
    }
  }

  const candidates = await completeFromMarketo([...pending.values()], deps, outcomes)

  // 1. Linked records, confirmed by id. One this invocation created on an earlier try (the try
  // ended before its outcome was saved) is still reported created.
  const links = await deps.links.getMany([...candidates.keys()])
  const confirmed = new Map<number, RecordLink>()
  for (const type of ['Lead', 'Contact'] as const) {
    const linked = [...links].filter(([, link]) => link.type === type)
    if (linked.length === 0) continue
    const existing = await deps.records.existingIds(type, linked.map(([, link]) => link.id))
    for (const [marketoId, link] of linked) {
      if (existing.has(link.id)) confirmed.set(marketoId, link)
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
    const createdHere = email !== undefined && ownLinked.delete(email)
    outcomes.set(marketoId, createdHere ? created(marketoId, link) : existed(marketoId, link))
    candidates.delete(marketoId)
  }

  // Persons with no email at all cannot be checked for an existing record: refuse rather than risk a duplicate.
  const byEmail = new Map<string, Array<{ person: FlowStepPerson; fields: PersonFields }>>()
  for (const [marketoId, entry] of candidates) {
    const email = normaliseEmail(entry.fields.email)
    if (email === undefined) {
      outcomes.set(marketoId, failed(entry.person, 'MISSING_EMAIL', 'the person has no email address, so an existing lead or contact cannot be ruled out'))
      continue
    }
    if (email.length > DYNAMICS_EMAIL_MAX_LENGTH) {
      outcomes.set(marketoId, failed(entry.person, 'EMAIL_TOO_LONG', `the email address is longer than Dynamics' ${DYNAMICS_EMAIL_MAX_LENGTH} characters`))
      continue
    }
    const group = byEmail.get(email) ?? []
    group.push(entry)
    byEmail.set(email, group)
  }

  // 2. Existing leads and contacts by email. The claim generations are read first: a claim taken
  // after this look-up means the look-up may be stale for that email (email-claims.ts).
  const generations = await deps.claims.generations([...byEmail.keys()])
  const found = byEmail.size === 0 ? new Map<string, RecordLink>() : await deps.records.findByEmails([...byEmail.keys()])
  // A record this invocation created on an earlier try whose answer never came (a timeout, a
  // crash) is reported created, as if the answer had arrived.
  const ownCreations = await deps.claims.settleOwnCreations(found, invocationId)
  for (const [email, link] of found) {
    for (const [index, { person }] of (byEmail.get(email) ?? []).entries()) {
      await deps.links.set(person.marketoId, link)
      const createdHere = index === 0 && ownCreations.has(email)
      outcomes.set(person.marketoId, createdHere ? created(person.marketoId, link) : existed(person.marketoId, link))
    }
    byEmail.delete(email)
  }

  // 3. Create what is missing; one creator per email across all workers. A few emails at a time:
  // a claim is held only while its email is being worked on, not while it queues.
  const groups = [...byEmail]
  const createOne = async () => {
    for (let next = groups.shift(); next !== undefined; next = groups.shift()) {
      const [email, group] = next
      for (const outcome of await createForEmail(invocationId, email, generations.get(email) ?? 0, group, deps)) outcomes.set(outcome.marketoId, outcome)
    }
  }
  await Promise.all(Array.from({ length: Math.min(CREATES_IN_PARALLEL, groups.length) }, createOne))

  const reported = new Set<number>()
  const result = persons.filter((person) => !reported.has(person.marketoId) && reported.add(person.marketoId))
    .map((person) => outcomes.get(person.marketoId) ?? failed(person, 'INTERNAL', 'no outcome was decided'))
  deps.logger.info({
    invocationId,
    persons: persons.length,
    created: result.filter((o) => o.kind === 'created').length,
    existed: result.filter((o) => o.kind === 'existed').length,
    failed: result.filter((o) => o.kind === 'failed').length
  }, 'flow-step batch synced')
  return result
}

/** Fills in persons whose invocation lacked an email (fields not mapped in Marketo) from Marketo's REST API. */
async function completeFromMarketo (
  persons: readonly FlowStepPerson[],
  deps: SyncPersonBatchDeps,
  outcomes: Map<number, BatchOutcome>
): Promise<Map<number, { person: FlowStepPerson; fields: PersonFields }>> {
  const ready = new Map<number, { person: FlowStepPerson; fields: PersonFields }>()
  const incomplete: FlowStepPerson[] = []
  for (const person of persons) {
    if (normaliseEmail(person.fields.email) === undefined) incomplete.push(person)
    else ready.set(person.marketoId, { person, fields: person.fields })
  }
  if (incomplete.length === 0) return ready
  try {
    const leads = await deps.marketo.getLeadsByIds(incomplete.map((p) => p.marketoId), MARKETO_PERSON_FIELDS)
    const byId = new Map(leads.map((lead) => [Number(lead.id), lead]))
    for (const person of incomplete) {
      const lead = byId.get(person.marketoId)
      if (lead === undefined) {
        outcomes.set(person.marketoId, failed(person, 'PERSON_NOT_FOUND', 'the person no longer exists in Marketo'))
        continue
      }
      ready.set(person.marketoId, { person, fields: { ...pickFields(lead), ...withoutEmpty(person.fields) } })
    }
  } catch (error) {
    deps.logger.warn({ err: error, persons: incomplete.length }, 'reading persons from Marketo failed')
    for (const person of incomplete) {
      outcomes.set(person.marketoId, { ...failed(person, 'MARKETO_UNAVAILABLE', `reading the person from Marketo failed: ${(error as Error).message}`), retryable: true })
    }
  }
  return ready
}

/**
 * Never throws: whatever goes wrong becomes an outcome for each person of the group, retryable
 * when the record may or may not exist, so the batch's other persons are unaffected.
 */
async function createForEmail (
  invocationId: string,
  email: string,
  lookedUpAtGeneration: number,
  group: ReadonlyArray<{ person: FlowStepPerson, fields: PersonFields }>,
  deps: SyncPersonBatchDeps
): Promise<BatchOutcome[]> {
  const [first, ...others] = group
  if (first === undefined) return []
  const everyone = async (link: RecordLink, firstKind: 'created' | 'existed'): Promise<BatchOutcome[]> => {
    for (const { person } of group) await deps.links.set(person.marketoId, link)
    return [
      { marketoId: first.person.marketoId, kind: firstKind, recordType: link.type, recordId: link.id },
      ...others.map(({ person }) => existed(person.marketoId, link))
    ]
  }
  const undecided = (errorCode: string, reason: string) =>
    group.map(({ person }) => ({ ...failed(person, errorCode, reason), retryable: true }))

  let claim: ClaimResult
  try {
    claim = await deps.claims.claim(email, invocationId, lookedUpAtGeneration)
  } catch (error) {
    return undecided((error as { code?: string }).code ?? 'EMAIL_CLAIM_FAILED', (error as Error).message)
  }
  if (claim.kind === 'created-by-other') {
    const { type, id } = claim.record
    try {
      return await everyone({ type, id }, claim.record.invocationId === invocationId ? 'created' : 'existed')
    } catch (error) {
      return undecided('LINK_FAILED', (error as Error).message)
    }
  }

  try {
    if (claim.mustLookUpAgain) {
      const again = (await deps.records.findByEmails([email])).get(email)
      if (again !== undefined) {
        await claim.release(again, { created: false })
        return await everyone(again, 'existed')
      }
    }
    if (!await claim.confirm()) {
      await claim.release()
      return undecided('EMAIL_CLAIM_LOST', 'another worker took over or recorded this person meanwhile; retrying')
    }
    const link = await deps.records.create(first.person.syncAs, toDynamicsRecord(first.fields, first.person.syncAs, first.person.assignTo))
    await claim.release(link, { created: true })
    return await everyone(link, 'created')
  } catch (error) {
    if (error instanceof DataverseError && error.isRejection) {
      // Dynamics refused the record (validation): nothing was created, the next try may create.
      await claim.release().catch(() => undefined)
      return group.map(({ person }) => failed(person, `DYNAMICS_${error.code}`, error.message))
    }
    if (createCertainlyNotSent(error)) {
      await claim.release().catch(() => undefined)
    } else {
      // Unknown outcome (timeout, outage): leave the claim to lapse, so whoever claims next looks
      // the email up before creating; this invocation's retry recognises its own record.
      claim.abandon()
    }
    deps.logger.warn({ err: error, invocationId, persons: group.length }, 'creating a Dynamics record did not complete')
    return undecided(error instanceof DataverseError || error instanceof DataverseUnavailableError ? 'DYNAMICS_UNAVAILABLE' : 'SYNC_INTERRUPTED',
      `Dynamics did not complete the create: ${(error as Error).message}`)
  }
}

/**
 * Errors after which no create can have reached Dynamics: an answer that refused it (access,
 * throttling beyond our patience) — not a timeout, a 5xx or a broken connection.
 */
function createCertainlyNotSent (error: unknown): boolean {
  const answered = error instanceof DataverseUnavailableError ? error.cause : error
  return answered instanceof DataverseError && answered.status < 500 && answered.status !== 408
}

function pickFields (lead: Record<string, unknown>): PersonFields {
  const fields: Record<string, string | number | boolean | null> = {}
  for (const name of MARKETO_PERSON_FIELDS) {
    const value = lead[name]
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') fields[name] = value
  }
  return fields
}

function withoutEmpty (fields: PersonFields): PersonFields {
  return Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== null && value !== undefined && value !== ''))
}

function created (marketoId: number, link: RecordLink): BatchOutcome {
  return { marketoId, kind: 'created', recordType: link.type, recordId: link.id }
}

function existed (marketoId: number, link: RecordLink): BatchOutcome {
  return { marketoId, kind: 'existed', recordType: link.type, recordId: link.id }
}

function failed (person: FlowStepPerson, errorCode: string, reason: string): BatchOutcome {
  return { marketoId: person.marketoId, kind: 'failed', errorCode, reason }
}
