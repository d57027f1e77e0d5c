import { test } from 'tap'
import { DataverseError, DataverseUnavailableError } from '../../src/dynamics/dataverse-errors.ts'
import { AzureAdAuthError, AzureAdTimeoutError } from '../../src/dynamics/access-token-provider.ts'
import {
  checkAssignTo, claimFailed, confirmedLink, createFailed, decideRecordAction, emailForLookUp, fieldsAfterMarketoRead,
  lookUpFailed, needsMarketoRead, recordForEmail, uniquePersons, verdictsForRecord
} from '../../src/flow-step/person-decisions.ts'

/** The flow step's per-person decisions, one outcome at a time: plain data in, a verdict out. */

const lead = { type: 'Lead', id: '0f8fad5b-d9cb-469f-a165-70867728950e' } as const
const contact = { type: 'Contact', id: '7c9e6679-7425-40de-944b-e07fc1f90ae7' } as const

test('a person listed twice in one invocation is synced and reported once, at their first place', async (t) => {
  const persons = [{ marketoId: 1, n: 'a' }, { marketoId: 2, n: 'b' }, { marketoId: 1, n: 'c' }]
  t.same(uniquePersons(persons), [{ marketoId: 1, n: 'a' }, { marketoId: 2, n: 'b' }])
})

test('Assign To: a Dynamics user id or nothing passes; anything else fails the person for good', async (t) => {
  t.equal(checkAssignTo(undefined), undefined)
  t.equal(checkAssignTo('6F9619FF-8B86-D011-B42D-00CF4FC964FF'), undefined)
  t.match(checkAssignTo('Jane Seller'), { kind: 'failed', errorCode: 'INVALID_ASSIGN_TO', retryable: false, reason: /Dynamics user id/ })
  t.match(checkAssignTo('6f9619ff-8b86-d011-b42d-00cf4fc964f'), { errorCode: 'INVALID_ASSIGN_TO' }, 'one digit short')
})

test('a person whose invocation has no email is read from Marketo first', async (t) => {
  t.equal(needsMarketoRead({ firstName: 'Ada' }), true)
  t.equal(needsMarketoRead({ email: '' }), true)
  t.equal(needsMarketoRead({ email: 'ada@example.com' }), false)
})

test('read from Marketo: its fields, the invocation\'s non-empty values winning', async (t) => {
  const read = fieldsAfterMarketoRead({ email: '', firstName: 'Ada (from the flow)', lastName: null },
    { kind: 'found', person: { id: 5, email: 'ada@example.com', firstName: 'Ada', lastName: 'Lovelace', unmapped: 'x', nested: { a: 1 } } })
  t.same(read, { fields: { email: 'ada@example.com', firstName: 'Ada (from the flow)', lastName: 'Lovelace' } })
})

test('a person Marketo no longer has fails for good', async (t) => {
  t.same(fieldsAfterMarketoRead({}, { kind: 'not-found' }), { kind: 'failed', errorCode: 'PERSON_NOT_FOUND', reason: 'the person no longer exists in Marketo', retryable: false })
})

test('Marketo unavailable: the person is retried, with the reason', async (t) => {
  t.match(fieldsAfterMarketoRead({}, { kind: 'unavailable', message: 'HTTP 503' }), { kind: 'failed', errorCode: 'MARKETO_UNAVAILABLE', retryable: true, reason: /HTTP 503/ })
})

test('missing email: refused rather than risk a duplicate', async (t) => {
  t.match(emailForLookUp({ firstName: 'No Email' }), { kind: 'failed', errorCode: 'MISSING_EMAIL', retryable: false })
  t.match(emailForLookUp({ email: 'not-an-address' }), { errorCode: 'MISSING_EMAIL' })
})

test('an email longer than Dynamics\' 100 characters fails; exactly 100 is looked up, normalised', async (t) => {
  const at100 = `${'a'.repeat(100 - '@example.com'.length)}@example.com`
  t.same(emailForLookUp({ email: ` ${at100.toUpperCase()} ` }), { email: at100 })
  t.match(emailForLookUp({ email: `b${at100}` }), { kind: 'failed', errorCode: 'EMAIL_TOO_LONG', retryable: false, reason: /100 characters/ })
})

test('a linked record still in Dynamics is the person\'s record; one deleted in Dynamics is forgotten and the person created again', async (t) => {
  t.same(confirmedLink(lead, new Set([lead.id])), lead)
  t.equal(confirmedLink(lead, new Set()), undefined, 'deleted in Dynamics')
  t.same(decideRecordAction({ linked: confirmedLink(lead, new Set()) }), { kind: 'create' }, 'created anew, as the native step does')
  t.same(decideRecordAction({ linked: lead }), { kind: 'use', record: lead })
})

test('found by email: a lead alone, a contact alone, and both — the contact wins, as in the native sync', async (t) => {
  t.same(recordForEmail({ lead }), lead)
  t.same(recordForEmail({ contact }), contact)
  t.same(recordForEmail({ lead, contact }), contact)
  t.equal(recordForEmail(undefined), undefined)
  t.same(decideRecordAction({ byEmail: { lead, contact } }), { kind: 'use', record: contact })
  t.same(decideRecordAction({ byEmail: {} }), { kind: 'create' })
})

test('a linked record wins over what an email look-up found', async (t) => {
  t.same(decideRecordAction({ linked: lead, byEmail: { contact } }), { kind: 'use', record: lead })
})

test('persons sharing an email: the first is reported created when this invocation created the record, the rest existed', async (t) => {
  t.same(verdictsForRecord(lead, 3, true), [
    { kind: 'created', record: lead }, { kind: 'existed', record: lead }, { kind: 'existed', record: lead }
  ])
  t.same(verdictsForRecord(contact, 2, false), [{ kind: 'existed', record: contact }, { kind: 'existed', record: contact }])
})

test('Dynamics rejects the record (validation): failed for good with Dynamics\' code and message; the claim is released', async (t) => {
  const { verdict, claim } = createFailed(new DataverseError(400, '0x80044331', 'A validation error occurred. lastname is too long.'))
  t.same(verdict, { kind: 'failed', errorCode: 'DYNAMICS_0x80044331', reason: 'A validation error occurred. lastname is too long.', retryable: false })
  t.equal(claim, 'release')
})

test('a create of unknown outcome (timeout, 5xx): retryable, and the claim is left to lapse', async (t) => {
  const timedOut = createFailed(new DataverseUnavailableError('Dynamics did not complete POST leads: timeout', { cause: Object.assign(new Error('timeout'), { name: 'TimeoutError' }) }))
  t.match(timedOut, { verdict: { kind: 'failed', errorCode: 'DYNAMICS_UNAVAILABLE', retryable: true }, claim: 'abandon' })
  t.match(createFailed(new DataverseUnavailableError('5xx', { cause: new DataverseError(503, '', 'Service Unavailable') })), { claim: 'abandon' })
  t.match(createFailed(new Error('socket hang up')), { verdict: { errorCode: 'SYNC_INTERRUPTED', retryable: true }, claim: 'abandon' })
})

test('a create refused before it ran (throttled past the budget, access denied): retryable, the claim released', async (t) => {
  t.match(createFailed(new DataverseUnavailableError('throttled', { cause: new DataverseError(429, '0x80072322', 'limit') })), { verdict: { errorCode: 'DYNAMICS_UNAVAILABLE', retryable: true }, claim: 'release' })
  t.match(createFailed(new DataverseError(403, '0x80040220', 'no privilege')), { verdict: { retryable: true }, claim: 'release' })
})

test('a create that never left for want of an Azure AD token: retryable under the token\'s code, the claim released', async (t) => {
  t.match(createFailed(new AzureAdTimeoutError(10_000)), { verdict: { kind: 'failed', errorCode: 'AZURE_AD_TIMEOUT', retryable: true }, claim: 'release' })
  t.match(createFailed(new AzureAdAuthError('invalid client secret', { msalErrorCode: 'invalid_client', status: 401 })), { verdict: { errorCode: 'AZURE_AD_AUTH_FAILED', retryable: true }, claim: 'release' })
})

test('a failed look-up is not a create of unknown outcome: retryable with a read-failure code', async (t) => {
  t.match(lookUpFailed(new DataverseUnavailableError('Dynamics did not complete GET leads: HTTP 503')), { kind: 'failed', errorCode: 'LOOKUP_FAILED', retryable: true, reason: /nothing was created/ })
})

test('the email claim could not be taken: retryable, with the claim\'s own code when it has one', async (t) => {
  t.match(claimFailed(Object.assign(new Error('too long'), { code: 'EMAIL_CLAIM_TIMEOUT' })), { errorCode: 'EMAIL_CLAIM_TIMEOUT', retryable: true })
  t.match(claimFailed(new Error('Connection is closed.')), { errorCode: 'EMAIL_CLAIM_FAILED', retryable: true })
})
