import t, { type Test } from 'tap'
import Marketo from 'node-marketo-rest'
import { CHANGE_DATA_VALUE_ACTIVITY_TYPE_ID, startMarketoEmulator, type MarketoEmulator } from '../../sandbox/marketo/index.ts'

/**
 * The unmodified npm client node-marketo-rest 0.7.8 against the Marketo emulator: what it sends
 * (shared/reference/marketo-rest-and-ssfs.md §3.3) must be understood, and what the emulator
 * answers must drive the client's own token and retry logic (§3.4) the way Marketo's answers do.
 */

const client = { clientId: 'contract-client', clientSecret: 'contract-secret' }
/** Small retry settings so a failing scenario fails in milliseconds, not the default ~40 s. */
const fastRetry = { maxRetries: 2, initialDelay: 10, maxDelay: 50 }

async function startEmulator (t: Test): Promise<MarketoEmulator> {
  const emu = await startMarketoEmulator({
    munchkinId: '123-ABC-456',
    clients: [client],
    seedPersons: [
      { email: 'ann.lee@example.com', firstName: 'Ann', lastName: 'Lee', company: 'Contoso' },
      { email: 'bo.chen@example.com', firstName: 'Bo', lastName: 'Chen' }
    ]
  })
  t.teardown(() => emu.close())
  return emu
}

function marketoFor (emu: MarketoEmulator, credentials = client): Marketo {
  return new Marketo({ endpoint: emu.restUrl, identity: emu.identityUrl, ...credentials, retry: fastRetry })
}

t.test('find persons by email: requested fields, empty ones as null, one token for the session', async (t) => {
  const emu = await startEmulator(t)
  const marketo = marketoFor(emu)

  const found = await marketo.lead.find('email', ['ANN.LEE@example.com', 'bo.chen@example.com', 'nobody@example.com'], { fields: ['email', 'firstName', 'company'] })

  t.equal(found.success, true)
  t.match(found.requestId, /^[0-9a-f]+#[0-9a-f]+$/, 'requestId is <hex>#<hex ms>')
  t.same(found.result, [
    { id: 1000, email: 'ann.lee@example.com', firstName: 'Ann', company: 'Contoso' },
    { id: 1001, email: 'bo.chen@example.com', firstName: 'Bo', company: null }
  ], 'email matches ignore case; a requested empty field is null')

  const again = await marketo.lead.find('email', ['nobody@example.com'])
  t.same(again.result, [], 'no match is success with an empty result')
  t.equal(emu.identityRequestCount(), 1, 'the client reuses its token')
  t.equal(emu.restCallCount(), 2)
})

t.test('find without fields returns Marketo\'s default field list', async (t) => {
  const emu = await startEmulator(t)
  const found = await marketoFor(emu).lead.find('id', [1001])
  t.same(Object.keys(found.result?.[0] ?? {}).sort(), ['createdAt', 'email', 'firstName', 'id', 'lastName', 'updatedAt'])
  t.match(found.result?.[0]?.createdAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, 'Marketo datetime format, no milliseconds')
})

t.test('an unknown field is a request-level 1006 error the client rejects with', async (t) => {
  const emu = await startEmulator(t)
  await t.rejects(marketoFor(emu).lead.find('email', ['ann.lee@example.com'], { fields: ['shoeSize'] }), {
    name: 'HttpError',
    message: "Field 'shoeSize' not found",
    errors: [{ code: '1006' }]
  })
})

t.test('lead by id: the record first in the result; an unknown id gives an empty result', async (t) => {
  const emu = await startEmulator(t)
  const marketo = marketoFor(emu)
  const byId = await marketo.lead.byId(1000, { fields: ['email', 'lastName'] })
  t.same(byId.result, [{ id: 1000, email: 'ann.lee@example.com', lastName: 'Lee' }])
  const missing = await marketo.lead.byId(999999)
  t.equal(missing.success, true)
  t.same(missing.result, [])
})

t.test('createOnly by email creates the new person and skips the existing one with 1005', async (t) => {
  const emu = await startEmulator(t)
  const marketo = marketoFor(emu)

  const response = await marketo.lead.createOrUpdate([
    { email: 'cy.diaz@example.com', firstName: 'Cy', company: 'Fabrikam' },
    { email: 'Ann.Lee@example.com', firstName: 'Annie' }
  ], { action: 'createOnly', lookupField: 'email' })

  t.equal(response.success, true, 'per-record failures do not fail the request')
  const [created, skipped] = response.result ?? []
  t.match(created, { status: 'created', id: Number })
  t.same(skipped, { status: 'skipped', reasons: [{ code: '1005', message: 'Lead already exists' }] })
  const person = emu.persons.get(Number(created?.id))
  t.match(person, { email: 'cy.diaz@example.com', firstName: 'Cy', company: 'Fabrikam' })
  t.equal(emu.persons.findByEmail('ann.lee@example.com')?.firstName, 'Ann', 'the skipped record changed nothing')
})

t.test('createOrUpdate updates by lookup field and logs a Data Value Change; updateOnly on a stranger is 1004', async (t) => {
  const emu = await startEmulator(t)
  const marketo = marketoFor(emu)

  const updated = await marketo.lead.createOrUpdate([{ email: 'bo.chen@example.com', title: 'CTO' }], { lookupField: 'email' })
  t.same(updated.result, [{ id: 1001, status: 'updated' }])
  t.equal(emu.persons.get(1001)?.title, 'CTO')
  const change = emu.persons.activities(1001).find((activity) => activity.activityTypeId === CHANGE_DATA_VALUE_ACTIVITY_TYPE_ID)
  t.match(change?.attributes, [{ name: 'New Value', value: 'CTO' }, { name: 'Old Value', value: null }, { name: 'Reason', value: 'Web service API' }])

  const stranger = await marketo.lead.createOrUpdate([{ email: 'zed@example.com', title: 'CEO' }], { action: 'updateOnly', lookupField: 'email' })
  t.same(stranger.result, [{ status: 'skipped', reasons: [{ code: '1004', message: 'Lead not found' }] }])
  t.equal(emu.persons.findByEmail('zed@example.com'), undefined)
})

t.test('describe lists the fields the instance knows, with REST names', async (t) => {
  const emu = await startEmulator(t)
  const described = await marketoFor(emu).lead.describe()
  const email = described.result?.find((field) => (field.rest as { name: string }).name === 'email')
  t.match(email, { displayName: 'Email Address', dataType: 'email', rest: { name: 'email', readOnly: false } })
  t.ok(described.result?.some((field) => (field.rest as { name: string }).name === 'mobilePhone'))
})

t.test('activity types include New Lead and Change Data Value', async (t) => {
  const emu = await startEmulator(t)
  const types = await marketoFor(emu).activities.getActivityTypes()
  t.match(types.result, [{ id: 12, name: 'New Lead' }, { id: 13, name: 'Change Data Value', primaryAttribute: { name: 'Attribute Name' } }])
})

t.test('paging token, then lead activities page by page with nextPage()', async (t) => {
  const emu = await startEmulator(t)
  const marketo = marketoFor(emu)
  await marketo.lead.createOrUpdate([{ email: 'ann.lee@example.com', title: 'CFO', city: 'Oslo' }], { lookupField: 'email' })

  const token = await marketo.lead.getPageToken('2000-01-01T00:00:00Z')
  t.type(token.nextPageToken, 'string')
  const first = await marketo.lead.getActivities([1000], [12, 13], token.nextPageToken ?? '', { batchSize: 2 })
  t.equal(first.moreResult, true)
  t.same(first.result?.map((activity) => activity.activityTypeId), [12, 13])
  t.notOk('fields' in (first.result?.[1] ?? {}), 'Get Lead Activities does not carry lead-change fields')
  t.type(first.nextPage, 'function', 'the client attached nextPage() because a nextPageToken came back')
  const second = await first.nextPage!()
  t.equal(second.moreResult, false)
  t.same(second.result?.map((activity) => activity.activityTypeId), [13])
})

t.test('lead changes report changed fields by REST name', async (t) => {
  const emu = await startEmulator(t)
  const marketo = marketoFor(emu)
  await marketo.lead.createOrUpdate([{ email: 'bo.chen@example.com', lastName: 'Chan' }], { lookupField: 'email' })
  const token = await marketo.lead.getPageToken('2000-01-01T00:00:00Z')
  const changes = await marketo.lead.getChanges(token.nextPageToken ?? '', { fields: ['lastName'] })
  const change = changes.result?.find((activity) => activity.activityTypeId === 13)
  t.same(change?.fields, [{ id: 6, name: 'lastName', newValue: 'Chan', oldValue: 'Chen' }])
})

t.test('an expired token (602) is renewed by the client itself and the call succeeds', async (t) => {
  const emu = await startEmulator(t)
  const marketo = marketoFor(emu)
  await marketo.lead.byId(1000)
  t.equal(emu.identityRequestCount(), 1)
  const restCallsBefore = emu.restCallCount()

  emu.expireTokens()
  const after = await marketo.lead.byId(1000, { fields: ['email'] })

  t.same(after.result, [{ id: 1000, email: 'ann.lee@example.com' }])
  t.equal(emu.identityRequestCount(), 2, 'exactly one re-authentication')
  t.equal(emu.restCallCount() - restCallsBefore, 2, 'the 602 answer plus the retried call')
})

t.test('a 606 rate-limit answer is retried by the client after its max delay', async (t) => {
  const emu = await startEmulator(t)
  const marketo = marketoFor(emu)
  emu.faults.rateLimitNext(1)
  const found = await marketo.lead.find('email', ['bo.chen@example.com'])
  t.equal(found.result?.length, 1)
  t.equal(emu.restCallCount(), 2)
  t.equal(emu.identityRequestCount(), 1, 'a rate limit is not a token problem')
})

t.test('bad client credentials are rejected at the identity endpoint and no REST call is made', async (t) => {
  const emu = await startEmulator(t)
  const marketo = marketoFor(emu, { clientId: client.clientId, clientSecret: 'wrong' })
  await t.rejects(marketo.lead.byId(1000), { message: 'Authentication (invalid_client): Bad client credentials' })
  t.equal(emu.restCallCount(), 0)
  t.equal(emu.identityRequestCount(), 1, 'an identity 401 is not retried')
})

t.test('the lead-change feed: a paging token, then New Lead and Change Data Value page by page, only the fields asked for', async (t) => {
  const emu = await startEmulator(t)
  const marketo = marketoFor(emu)
  const token = await marketo.lead.getPageToken(new Date(Date.now() - 60_000).toISOString())

  const written = await marketo.lead.createOrUpdate([
    { email: 'bo.chen@example.com', title: 'CTO', city: 'Oslo' },
    { email: 'cy.diaz@example.com', firstName: 'Cy' }
  ], { lookupField: 'email' })
  const marketerEdit = await fetch(`${emu.url}/_emulator/persons/1000`, { method: 'PATCH', body: JSON.stringify({ fields: { title: 'VP Sales' } }) })
  t.same(await marketerEdit.json(), { changed: ['title'] })

  const pages = []
  let next = token.nextPageToken ?? ''
  for (let page = 0; page < 10; page++) {
    const changes = await marketo.lead.getChanges(next, { fields: ['title', 'firstName'], batchSize: 2 })
    pages.push(changes)
    t.type(changes.nextPageToken, 'string', 'every page carries a nextPageToken')
    next = changes.nextPageToken ?? ''
    if (changes.moreResult !== true) break
  }
  const changes = pages.flatMap((page) => page.result ?? [])
  t.equal(pages.length, 3, 'five changes in pages of two')

  const newCy = written.result?.[1]?.id
  t.same(changes.map((change) => [change.leadId, change.activityTypeId]), [[1000, 12], [1001, 12], [1001, 13], [newCy, 12], [1000, 13]],
    'the seeded persons and the new one come as New Lead; the city change is left out')
  const [, , apiWrite, created, uiEdit] = changes
  t.same(apiWrite?.fields, [{ id: 7, name: 'title', newValue: 'CTO', oldValue: null }])
  t.match(apiWrite?.attributes, [
    { name: 'New Value', value: 'CTO' },
    { name: 'Old Value', value: null },
    { name: 'Reason', value: 'Web service API' },
    { name: 'Source', value: 'Web service API' },
    { name: 'Lead ID', value: 1001 },
    { name: 'Api Method Name', value: 'syncLead' },
    { name: 'Request Id', value: written.requestId }
  ], 'a REST write names the API method and the request that made it')
  t.match(created?.attributes, [{ name: 'Created Date' }, { name: 'Source Type', value: 'Web service API' }])
  const uiAttributes = (uiEdit?.attributes ?? []) as Array<{ name: string }>
  t.notOk(uiAttributes.some((attribute) => attribute.name === 'Api Method Name'), 'a marketer\'s edit names no API method')
  t.match(uiEdit?.attributes, [{ name: 'New Value', value: 'VP Sales' }, { name: 'Old Value', value: null }, { name: 'Reason', value: 'Person detail edit' }])

  const quiet = await marketo.lead.getChanges(next, { fields: ['title'] })
  t.same(quiet.result, [], 'the last token reads nothing new')
  t.equal(quiet.moreResult, false)
})

t.test('createOrUpdate takes 300 records per call, answers each in input order, and refuses 301', async (t) => {
  const emu = await startEmulator(t)
  const marketo = marketoFor(emu)
  const input: Array<Record<string, unknown>> = Array.from({ length: 300 }, (_, i) => ({ email: `person${i}@example.com`, lastName: `Person ${i}` }))
  input[5] = { email: 'ann.lee@example.com', title: 'Buyer' }
  input[9] = { email: 'someone@example.com', shoeSize: '44' }

  const response = await marketo.lead.createOrUpdate(input, { action: 'createOrUpdate', lookupField: 'email' })

  t.equal(response.result?.length, 300)
  t.same(response.result?.[5], { id: 1000, status: 'updated' })
  t.same(response.result?.[9], { status: 'skipped', reasons: [{ code: '1006', message: "Field 'shoeSize' not found" }] })
  t.equal(response.result?.filter((record) => record.status === 'created').length, 298)
  t.equal(emu.persons.list().length, 2 + 298)

  const tooMany = [...input, { email: 'one.more@example.com' }]
  await t.rejects(marketo.lead.createOrUpdate(tooMany, { lookupField: 'email' }), { errors: [{ code: '1003' }] })
  t.equal(emu.persons.findByEmail('one.more@example.com'), undefined)
})

t.test('updateOnly by id updates the person the id names; an id with createOnly is skipped with 1003', async (t) => {
  const emu = await startEmulator(t)
  const marketo = marketoFor(emu)
  const byId = await marketo.lead.createOrUpdate([{ id: 1001, city: 'Bergen' }, { id: 424242, city: 'Nowhere' }], { action: 'updateOnly', lookupField: 'id' })
  t.same(byId.result, [{ id: 1001, status: 'updated' }, { status: 'skipped', reasons: [{ code: '1004', message: 'Lead not found' }] }])
  t.equal(emu.persons.get(1001)?.city, 'Bergen')
  const createWithId = await marketo.lead.createOrUpdate([{ id: 1001, email: 'new@example.com' }], { action: 'createOnly' })
  t.same(createWithId.result, [{ status: 'skipped', reasons: [{ code: '1003', message: 'Invalid data' }] }])
})

t.test('describe gives each field its data type and REST name, custom fields included', async (t) => {
  const emu = await startMarketoEmulator({ munchkinId: '123-ABC-456', clients: [client], seedPersons: [{ email: 'x@example.com', customerTier: 'gold' }] })
  t.teardown(() => emu.close())
  const described = await marketoFor(emu).lead.describe()
  const byName = new Map(described.result?.map((field) => [(field.rest as { name: string }).name, field]))
  t.match(byName.get('unsubscribed'), { dataType: 'boolean', rest: { name: 'unsubscribed', readOnly: false } })
  t.match(byName.get('updatedAt'), { dataType: 'datetime', rest: { readOnly: true } })
  t.match(byName.get('customerTier'), { id: Number, dataType: 'string', rest: { name: 'customerTier' } }, 'a field first seen in a seed is a custom string field')
  t.match(byName.get('microsoftIsDeleted'), { id: Number, dataType: 'boolean', rest: { name: 'microsoftIsDeleted', readOnly: false } }, 'the native sync\'s custom fields exist from the start')
})

t.test('615 and 607 are not retried by the client; a 606 from the real window is retried until its tries run out', async (t) => {
  const emu = await startEmulator(t)
  const marketo = marketoFor(emu)
  await marketo.lead.byId(1000)

  emu.limits.configure({ maxConcurrent: 1 })
  emu.faults.setLatency(200)
  const overlapping = await Promise.allSettled([marketo.lead.byId(1000), marketo.lead.byId(1001)])
  t.same(overlapping.map((outcome) => outcome.status).sort(), ['fulfilled', 'rejected'])
  t.match(overlapping.find((outcome) => outcome.status === 'rejected'), { reason: { errors: [{ code: '615' }] } })
  emu.faults.setLatency(0)

  emu.limits.resetCounters()
  emu.limits.configure({ maxConcurrent: 10, dailyQuota: 0 })
  const callsBefore = emu.restCallCount()
  await t.rejects(marketo.lead.byId(1000), { errors: [{ code: '607', message: 'Daily quota reached' }] })
  t.equal(emu.restCallCount() - callsBefore, 1, 'no retry on 607')

  emu.limits.configure({ dailyQuota: 50_000, callsPerWindow: 0 })
  const beforeWindow = emu.restCallCount()
  await t.rejects(marketo.lead.byId(1000), { errors: [{ code: '606' }] })
  t.equal(emu.restCallCount() - beforeWindow, 1 + fastRetry.maxRetries, 'the first call and each retry')
})

t.test('a custom activity type and its activities, read back by the client\'s getActivityTypes and getActivities', async (t) => {
  // node-marketo-rest 0.7.8 has no method to create, approve or add custom activities: those go
  // over plain fetch here (and in test/sandbox/marketo-custom-activities.test.ts); the reads are the client's own.
  const emu = await startEmulator(t)
  const marketo = marketoFor(emu)
  const { access_token: token } = await marketo.getOAuthToken()
  const post = async (path: string, body?: unknown): Promise<{ result: Array<Record<string, unknown>> }> => {
    const response = await fetch(`${emu.restUrl}${path}`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify(body ?? {})
    })
    return await response.json() as { result: Array<Record<string, unknown>> }
  }
  const created = await post('/v1/activities/external/type.json', {
    apiName: 'syncFailed',
    name: 'Dynamics sync failed',
    triggerName: 'Dynamics sync fails',
    filterName: 'Dynamics sync failed',
    primaryAttribute: { apiName: 'dynamicsEntity', name: 'Dynamics Entity' }
  })
  const typeId = created.result[0]?.id as number
  await post('/v1/activities/external/type/syncFailed/attributes/create.json', { attributes: [{ apiName: 'dynamicsMessage', name: 'Dynamics Message', dataType: 'text' }] })
  const beforeApproval = await marketo.activities.getActivityTypes()
  t.notOk(beforeApproval.result?.some((type) => type.id === typeId), 'a draft type is not listed')
  await post('/v1/activities/external/type/syncFailed/approve.json')
  await post('/v1/activities/external.json', {
    input: [{ leadId: 1001, activityDate: '2026-03-02T12:00:00Z', activityTypeId: typeId, primaryAttributeValue: 'lead', attributes: [{ apiName: 'dynamicsMessage', value: 'Last Name is required' }] }]
  })

  const types = await marketo.activities.getActivityTypes()
  t.match(types.result?.find((type) => type.id === typeId), { name: 'Dynamics sync failed', attributes: [{ name: 'Dynamics Message', dataType: 'text' }] })
  const page = await marketo.lead.getPageToken('2026-01-01T00:00:00Z')
  const activities = await marketo.lead.getActivities([1001], [typeId], page.nextPageToken ?? '')
  t.match(activities.result, [{ leadId: 1001, activityTypeId: typeId, primaryAttributeValue: 'lead', attributes: [{ name: 'Dynamics Message', value: 'Last Name is required' }] }])
  t.equal(activities.result?.length, 1)
})
