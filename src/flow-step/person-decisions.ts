import type { RecordLink } from '../domain/record-link.ts'
import type { PersonFields } from '../domain/person.ts'
import type { EmailMatches } from '../dynamics/person-records.ts'
import { DataverseError, DataverseUnavailableError } from '../dynamics/dataverse-errors.ts'
import { AzureAdAuthError, AzureAdTimeoutError } from '../dynamics/access-token-provider.ts'
import { MARKETO_PERSON_FIELDS, normaliseEmail } from '../sync/person-field-mapping.ts'

/**
 * What becomes of one person, decided from what was found about them — pure functions, no I/O,
 * no Redis, no clock. The flow step (sync-person-batch.ts) loads, calls these, acts and records;
 * the background sync reuses them. The rules follow the native "Sync Person to Microsoft"
 * (shared/reference/marketo-native-dynamics-sync.md §3, §4, §7, §10): create the person if no
 * lead or contact exists for them, do nothing if one does.
 */

/** A person the flow step could not sync; `retryable` when a later try may well succeed. */
export interface PersonFailure {
  readonly kind: 'failed'
  readonly errorCode: string
  readonly reason: string
  readonly retryable: boolean
}

/** The record a person is, and whether this invocation created it. */
export interface PersonRecordFound {
  readonly kind: 'created' | 'existed'
  readonly record: RecordLink
}

export type PersonVerdict = PersonRecordFound | PersonFailure

/** emailaddress1's maximum length in Dataverse (dataverse reference §7); a longer one cannot exist there. */
export const DYNAMICS_EMAIL_MAX_LENGTH = 100

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

export function failure (errorCode: string, reason: string, retryable = false): PersonFailure {
  return { kind: 'failed', errorCode, reason, retryable }
}

/** Each person once, at their first place: a person listed twice is synced and reported once. */
export function uniquePersons<P extends { readonly marketoId: number }> (persons: readonly P[]): P[] {
  const seen = new Set<number>()
  return persons.filter((person) => {
    if (seen.has(person.marketoId)) return false
    seen.add(person.marketoId)
    return true
  })
}

/** Assign To must name a Dynamics user (a systemuser id); anything else would fail the create. */
export function checkAssignTo (assignTo: string | undefined): PersonFailure | undefined {
  if (assignTo === undefined || GUID.test(assignTo)) return undefined
  return failure('INVALID_ASSIGN_TO', 'Assign To is not a Dynamics user id; choose the user again in the flow step')
}

/** A person whose invocation carried no usable email (fields not mapped in Marketo) is read from Marketo first. */
export function needsMarketoRead (fields: PersonFields): boolean {
  return normaliseEmail(fields.email) === undefined
}

/** The result of reading one person from Marketo's REST API. */
export type MarketoRead =
  | { readonly kind: 'found', readonly person: Readonly<Record<string, unknown>> }
  | { readonly kind: 'not-found' }
  | { readonly kind: 'unavailable', readonly message: string }

/**
 * The fields to sync for a person read from Marketo: Marketo's values, overridden by the
 * invocation's non-empty ones (the invocation is the newer word). Marketo away is retryable; a
 * person Marketo no longer has is final.
 */
export function fieldsAfterMarketoRead (invocationFields: PersonFields, read: MarketoRead): { readonly fields: PersonFields } | PersonFailure {
  if (read.kind === 'unavailable') return failure('MARKETO_UNAVAILABLE', `reading the person from Marketo failed: ${read.message}`, true)
  if (read.kind === 'not-found') return failure('PERSON_NOT_FOUND', 'the person no longer exists in Marketo')
  return { fields: { ...pickMarketoFields(read.person), ...withoutEmpty(invocationFields) } }
}

/**
 * The email to look the person up by. Without one an existing lead or contact cannot be ruled
 * out, so the person is refused rather than risk a duplicate; one longer than Dynamics allows
 * cannot match a record, nor be created.
 */
export function emailForLookUp (fields: PersonFields): { readonly email: string } | PersonFailure {
  const email = normaliseEmail(fields.email)
  if (email === undefined) return failure('MISSING_EMAIL', 'the person has no email address, so an existing lead or contact cannot be ruled out')
  if (email.length > DYNAMICS_EMAIL_MAX_LENGTH) return failure('EMAIL_TOO_LONG', `the email address is longer than Dynamics' ${DYNAMICS_EMAIL_MAX_LENGTH} characters`)
  return { email }
}

/**
 * The linked record, if Dynamics still has it. Identity is the CRM record id, not the email
 * (reference §4); a record deleted in Dynamics is forgotten and the person is treated as new, so
 * the flow step creates them again as the native one does (reference §7).
 */
export function confirmedLink (link: RecordLink | undefined, existingIds: ReadonlySet<string>): RecordLink | undefined {
  return link !== undefined && existingIds.has(link.id.toLowerCase()) ? link : undefined
}

/**
 * Of the lead and the contact found for an email, the person's record: the contact. In Marketo a
 * CRM contact always wins over a CRM lead (reference §4, C9), and Dynamics refuses a lead for
 * someone who is already a contact (§4, C4); either way the flow step does nothing (§3, §10).
 */
export function recordForEmail (matches: EmailMatches | undefined): RecordLink | undefined {
  return matches?.contact ?? matches?.lead
}

/** What to do for a person: nothing if a record is theirs (linked, else found by email), create otherwise. */
export function decideRecordAction (found: { readonly linked?: RecordLink, readonly byEmail?: EmailMatches }): { readonly kind: 'use', readonly record: RecordLink } | { readonly kind: 'create' } {
  const record = found.linked ?? recordForEmail(found.byEmail)
  return record === undefined ? { kind: 'create' } : { kind: 'use', record }
}

/**
 * The verdicts for the persons sharing one email, in their order, once a record exists for it.
 * At most the first was created by this invocation (one record per email); a record this
 * invocation created on an earlier try whose answer was lost is still reported created.
 */
export function verdictsForRecord (record: RecordLink, persons: number, createdByThisInvocation: boolean): PersonRecordFound[] {
  return Array.from({ length: persons }, (_, index) => ({ kind: index === 0 && createdByThisInvocation ? 'created' : 'existed', record }))
}

/** What to do with the email claim after a create failed. */
export type ClaimAfterFailure = 'release' | 'abandon'

/**
 * A create that failed: Dynamics refused the record itself (validation) — final, with Dynamics'
 * code and message, nothing was written; refused before executing (access, throttling) — retry,
 * nothing was written; no answer (timeout, 5xx, broken connection) — the record may exist, so the
 * claim is left to lapse and whoever claims next looks Dynamics up first.
 */
export function createFailed (error: unknown): { readonly verdict: PersonFailure, readonly claim: ClaimAfterFailure } {
  const message = error instanceof Error ? error.message : String(error)
  if (error instanceof DataverseError && error.isRejection) {
    return { verdict: failure(`DYNAMICS_${error.code}`, message), claim: 'release' }
  }
  if (error instanceof AzureAdTimeoutError || error instanceof AzureAdAuthError) {
    // The token is got before the request leaves (dataverse-client.ts): without one, no create was
    // sent, so the claim goes back at once instead of keeping the next try waiting for it to lapse.
    return { verdict: failure(error.code, `Dynamics was not reached: ${message}`, true), claim: 'release' }
  }
  const code = error instanceof DataverseError || error instanceof DataverseUnavailableError ? 'DYNAMICS_UNAVAILABLE' : 'SYNC_INTERRUPTED'
  return {
    verdict: failure(code, `Dynamics did not complete the create: ${message}`, true),
    claim: createCertainlyNotExecuted(error) ? 'release' : 'abandon'
  }
}

/**
 * A look-up that failed (Dynamics or Redis did not answer a read): nothing was sent that could
 * have created anything, so the caller releases any claim it holds at once, and the person is
 * retried — unlike a create of unknown outcome, which must leave its claim to lapse.
 */
export function lookUpFailed (error: unknown): PersonFailure {
  const message = error instanceof Error ? error.message : String(error)
  return failure('LOOKUP_FAILED', `looking the person up failed, nothing was created: ${message}`, true)
}

/** Taking or checking the email claim failed (Redis away, another worker too slow): retry later. */
export function claimFailed (error: unknown): PersonFailure {
  const code = (error as { code?: unknown } | null)?.code
  return failure(typeof code === 'string' ? code : 'EMAIL_CLAIM_FAILED', error instanceof Error ? error.message : String(error), true)
}

/** The claim was lost before the create (another worker took over or recorded the person): retry. */
export function claimLost (): PersonFailure {
  return failure('EMAIL_CLAIM_LOST', 'another worker took over or recorded this person meanwhile; retrying', true)
}

/**
 * Errors after which no create can have reached Dynamics: an answer that refused it (access,
 * throttling beyond our patience) — not a timeout, a 5xx or a broken connection.
 */
function createCertainlyNotExecuted (error: unknown): boolean {
  const answered = error instanceof DataverseUnavailableError ? error.cause : error
  return answered instanceof DataverseError && answered.status < 500 && answered.status !== 408
}

function pickMarketoFields (person: Readonly<Record<string, unknown>>): PersonFields {
  const fields: Record<string, string | number | boolean | null> = {}
  for (const name of MARKETO_PERSON_FIELDS) {
    const value = person[name]
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') fields[name] = value
  }
  return fields
}

function withoutEmpty (fields: PersonFields): PersonFields {
  return Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== null && value !== undefined && value !== ''))
}
