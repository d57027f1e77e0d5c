import { randomUUID } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { DynamicsWebApi } from 'dynamics-web-api'
import { ensureSandboxTls } from '../../sandbox/tls.ts'
import { startAzureAdEmulator } from '../../sandbox/azure-ad/index.ts'
import { startDataverseEmulator } from '../../sandbox/dataverse/index.ts'
import { createMsalAccessTokenProvider } from '../../src/dynamics/access-token-provider.ts'

/**
 * Unmodified dynamics-web-api 2.5 against the Dataverse emulator, with tokens MSAL obtains from the
 * Azure AD emulator; the Dataverse emulator only accepts tokens the AAD emulator issued for it.
 */

// dynamics-web-api honours http_proxy; a proxy would never reach loopback (reference doc §9.1).
for (const name of ['http_proxy', 'https_proxy', 'HTTP_PROXY', 'HTTPS_PROXY']) delete process.env[name]

const tenantId = randomUUID()
const client = { clientId: randomUUID(), clientSecret: randomUUID() }
const tls = await ensureSandboxTls(fileURLToPath(new URL('../../.sandbox/tls/', import.meta.url)))
const aad = await startAzureAdEmulator({ tls: { certPem: tls.certPem, keyPem: tls.keyPem }, tenantId, clients: [client] })
t.teardown(() => aad.close())

// The token's audience is the environment URL, as for a real org; the emulator's own URL differs.
const resourceUrl = 'https://sandbox.crm.dynamics.com'
const dataverse = await startDataverseEmulator({
  verifyAccessToken: (token) => aad.verifyAccessToken(token, { audience: resourceUrl }),
  requiredFields: { leads: ['lastname'] }
})
t.teardown(() => dataverse.close())

const tokens = createMsalAccessTokenProvider({
  authorityHost: aad.authorityHost,
  tenantId,
  clientId: client.clientId,
  credential: { kind: 'secret', clientSecret: client.clientSecret },
  resourceUrl
})
const api = new DynamicsWebApi({ serverUrl: dataverse.url, onTokenRefresh: () => tokens.getAccessToken() })

interface DwaError extends Error {
  status?: number
  code?: string
  headers?: Record<string, string>
}

async function rejection (promise: Promise<unknown>): Promise<DwaError> {
  return await promise.then(
    () => { throw new Error('expected the request to fail') },
    (error: unknown) => error as DwaError
  )
}

t.test('create returns the new id and the row is stored with defaults', async (t) => {
  const id = String(await api.create({ collection: 'leads', data: { firstname: 'Ada', lastname: 'Lovelace', emailaddress1: 'ada@example.com' } }))
  t.match(id, /^[0-9a-f-]{36}$/)
  const stored = dataverse.store.get('leads', id)
  t.equal(stored?.fullname, 'Ada Lovelace')
  t.equal(stored?._ownerid_value, dataverse.store.defaultUserId)
})

t.test('create with an owner binding, then retrieve with $select', async (t) => {
  const ownerId = dataverse.store.insert('systemusers', { firstname: 'Grace', lastname: 'Hopper', internalemailaddress: 'grace@example.com' })
  const id = String(await api.create({
    collection: 'leads',
    data: { lastname: 'Babbage', subject: 'Engine', 'ownerid@odata.bind': `/systemusers(${ownerId})` }
  }))
  const lead = await api.retrieve<Record<string, unknown>>({ collection: 'leads', key: id, select: ['lastname', 'subject', '_ownerid_value', 'createdon'] })
  t.equal(lead.lastname, 'Babbage')
  t.equal(lead._ownerid_value, ownerId)
  t.equal(lead.leadid, id, 'primary key is returned even when not selected')
  t.ok(lead.createdon instanceof Date, 'dates without milliseconds are revived by dynamics-web-api')
  t.match(String(lead['@odata.etag']), /^W\/"\d+"$/)
  t.notOk('firstname' in lead, 'unselected columns are left out')
})

t.test('retrieve of a missing row rejects with 404 and Dataverse\'s message', async (t) => {
  const missing = randomUUID()
  const error = await rejection(api.retrieve({ collection: 'leads', key: missing }))
  t.equal(error.status, 404)
  t.equal(error.code, '0x80040217')
  t.equal(error.message, `lead With Id = ${missing} Does Not Exist`)
})

t.test('retrieveMultiple with a filter, select and paging via maxPageSize and nextLink', async (t) => {
  const company = `Paging ${randomUUID().slice(0, 8)}`
  for (let index = 0; index < 5; index++) {
    await api.create({ collection: 'contacts', data: { firstname: `P${index}`, lastname: company, emailaddress1: `p${index}@paging.example` } })
  }
  await api.create({ collection: 'contacts', data: { lastname: 'Someone Else' } })

  const request = {
    collection: 'contacts',
    select: ['fullname', 'emailaddress1'],
    filter: `lastname eq '${company}' and contains(emailaddress1, '@paging.')`,
    orderBy: ['firstname desc'],
    maxPageSize: 2,
    count: true
  }
  const first = await api.retrieveMultiple<Record<string, unknown>>(request)
  t.equal(first.value.length, 2)
  t.equal(first.oDataCount, 5)
  t.same(first.value.map((row) => row.fullname), [`P4 ${company}`, `P3 ${company}`])
  t.ok(first.oDataNextLink?.startsWith(`${dataverse.url}/api/data/v9.2/contacts?`), 'nextLink on the client\'s own base URL')

  const second = await api.retrieveMultiple<Record<string, unknown>>(request, first.oDataNextLink)
  t.same(second.value.map((row) => row.fullname), [`P2 ${company}`, `P1 ${company}`])
  const third = await api.retrieveMultiple<Record<string, unknown>>(request, second.oDataNextLink)
  t.same(third.value.map((row) => row.fullname), [`P0 ${company}`])
  t.equal(third.oDataNextLink, undefined, 'the last page has no nextLink')

  const all = await api.retrieveAll<Record<string, unknown>>(request)
  t.equal(all.value.length, 5)
})

t.test('update: an existing row changes, a missing one is a 404 (If-Match: *)', async (t) => {
  const id = String(await api.create({ collection: 'leads', data: { lastname: 'Before' } }))
  const updated = await api.update({ collection: 'leads', key: id, data: { lastname: 'After', jobtitle: 'CTO' } })
  t.equal(updated, true)
  t.equal(dataverse.store.get('leads', id)?.lastname, 'After')

  const missing = randomUUID()
  const error = await rejection(api.update({ collection: 'leads', key: missing, data: { lastname: 'Nobody' } }))
  t.equal(error.status, 404)
  t.equal(error.code, '0x80040217')
  t.equal(dataverse.store.get('leads', missing), undefined, 'update never creates')
})

t.test('upsert creates, then updates the same row', async (t) => {
  const id = randomUUID()
  const created = await api.upsert({ collection: 'contacts', key: id, data: { firstname: 'Up', lastname: 'Sert' } })
  t.equal(created, id)
  t.equal(dataverse.store.get('contacts', id)?.fullname, 'Up Sert')
  const versionBefore = dataverse.store.get('contacts', id)?.versionnumber as number

  await api.upsert({ collection: 'contacts', key: id, data: { jobtitle: 'Engineer' } })
  const after = dataverse.store.get('contacts', id)
  t.equal(after?.jobtitle, 'Engineer')
  t.equal(after?.firstname, 'Up', 'untouched columns keep their value')
  t.ok((after?.versionnumber as number) > versionBefore, 'version moves on')
  t.equal(dataverse.store.list('contacts').filter((row) => row.contactid === id).length, 1)
})

t.test('a validation error rejects with status 400 and Dataverse\'s code and message', async (t) => {
  const tooLong = await rejection(api.create({ collection: 'leads', data: { lastname: 'Long', firstname: 'x'.repeat(51) } }))
  t.equal(tooLong.status, 400)
  t.equal(tooLong.code, '0x80044331')
  t.equal(tooLong.message, "A validation error occurred. The length of the 'firstname' attribute of the 'lead' entity exceeded the maximum allowed length of '50'.")

  const unknown = await rejection(api.create({ collection: 'leads', data: { lastname: 'X', favouritecolour: 'blue' } }))
  t.equal(unknown.status, 400)
  t.equal(unknown.code, '0x0')
  t.match(unknown.message, "Invalid property 'favouritecolour' was found in entity 'Microsoft.Dynamics.CRM.lead'.")

  const missingRequired = await rejection(api.create({ collection: 'leads', data: { firstname: 'NoLast' } }))
  t.equal(missingRequired.status, 400)
  t.match(missingRequired.message, /'lastname'/)
})

t.test('a throttled request rejects with 429 and retry-after', async (t) => {
  dataverse.faults.throttleNext(1, 7)
  const throttled = await rejection(api.retrieveMultiple({ collection: 'leads', select: ['fullname'] }))
  t.equal(throttled.status, 429)
  t.equal(throttled.code, '0x80072322')
  t.equal(throttled.headers?.['retry-after'], '7')
  const next = await api.retrieveMultiple({ collection: 'leads', select: ['fullname'] })
  t.ok(Array.isArray(next.value), 'the request after the throttled one succeeds')
})

t.test('change tracking: retrieveAll with trackChanges pages to a delta link; retrieveMultiple follows it to only the changes', async (t) => {
  const salesperson = dataverse.store.insert('systemusers', { firstname: 'Sam', lastname: 'Seller' })
  const ids: string[] = []
  for (const name of ['Tracked One', 'Tracked Two', 'Tracked Three']) {
    ids.push(String(await api.create({ collection: 'contacts', data: { lastname: name } })))
  }
  const request = { collection: 'contacts', select: ['lastname', '_modifiedby_value', 'modifiedon'], trackChanges: true, maxPageSize: 2 }
  const initial = await api.retrieveAll<Record<string, unknown>>(request)
  const seen = initial.value.map((row) => row.contactid)
  t.same(ids.filter((id) => seen.includes(id)), ids, 'the full read has every row')
  t.equal(new Set(seen).size, seen.length, 'no row twice across pages')
  t.ok(initial.value.every((row) => row._modifiedby_value === dataverse.store.defaultUserId), 'rows the app wrote name the app user')
  const deltaLink = initial.oDataDeltaLink
  t.ok(deltaLink?.startsWith(`${dataverse.url}/api/data/v9.2/contacts?`), 'a delta link on the client\'s own base URL')

  const [first, second, third] = ids as [string, string, string]
  await api.update({ collection: 'contacts', key: second, data: { jobtitle: 'Buyer' }, impersonate: salesperson })
  await api.deleteRecord({ collection: 'contacts', key: third })
  const created = String(await api.create({ collection: 'contacts', data: { lastname: 'Tracked Four' } }))

  // Two pages of two: the delta read pages like any other, its last page carries the delta link.
  const deltaPage = await api.retrieveMultiple<Record<string, unknown>>(request, deltaLink)
  t.equal(deltaPage.value.length, 2)
  t.equal(deltaPage.oDataDeltaLink, undefined, 'no delta link before the last page')
  const lastPage = await api.retrieveMultiple<Record<string, unknown>>(request, deltaPage.oDataNextLink)
  const delta = { value: [...deltaPage.value, ...lastPage.value], oDataDeltaLink: lastPage.oDataDeltaLink }
  t.same(delta.value.map((row) => row.contactid ?? row.id), [second, created, third], 'the edit, the create, then the delete')
  t.equal(delta.value[0]?._modifiedby_value, salesperson, 'the edit is the impersonated person\'s')
  t.ok(delta.value[0]?.modifiedon instanceof Date, 'modifiedon revived as a Date')
  t.match(delta.value[2], { id: third, reason: 'deleted', '@odata.context': /\$metadata#contacts\/\$deletedEntity$/ })
  t.notOk(delta.value.some((row) => row.contactid === first), 'an untouched row is not reported')
  t.type(delta.oDataDeltaLink, 'string', 'a new delta link')

  const quiet = await api.retrieveMultiple(request, delta.oDataDeltaLink)
  t.same(quiet.value, [], 'no changes since: an empty page')
})

t.test('an expired delta link rejects with ExpiredVersionStamp; a new full read recovers', async (t) => {
  const request = { collection: 'leads', select: ['lastname'], trackChanges: true }
  const { oDataDeltaLink } = await api.retrieveMultiple(request)
  dataverse.changeTracking.expireTokens()
  const error = await rejection(api.retrieveMultiple(request, oDataDeltaLink))
  t.equal(error.status, 400)
  t.equal(error.code, '0x80044352')
  const fresh = await api.retrieveMultiple(request)
  const again = await api.retrieveMultiple(request, fresh.oDataDeltaLink)
  t.same(again.value, [])
})

t.test('WhoAmI through callFunction names the application user', async (t) => {
  const whoAmI = await api.callFunction<{ UserId: string, BusinessUnitId: string, OrganizationId: string }>('WhoAmI')
  t.equal(whoAmI.UserId, dataverse.store.defaultUserId)
  t.match(whoAmI.BusinessUnitId, /^[0-9a-f-]{36}$/)
  t.match(whoAmI.OrganizationId, /^[0-9a-f-]{36}$/)
})

t.test('UpdateMultiple through callAction on the leads collection writes every target and resolves with no body', async (t) => {
  const ids = ['One', 'Two', 'Three'].map((lastname) => dataverse.store.insert('leads', { lastname }))
  const result = await api.callAction({
    collection: 'leads',
    actionName: 'Microsoft.Dynamics.CRM.UpdateMultiple',
    action: { Targets: ids.map((leadid, n) => ({ '@odata.type': 'Microsoft.Dynamics.CRM.lead', leadid, jobtitle: `Bulk ${n}` })) }
  })
  t.equal(result, undefined, '204: nothing to return')
  t.same(ids.map((id) => dataverse.store.get('leads', id)?.jobtitle), ['Bulk 0', 'Bulk 1', 'Bulk 2'])
  t.ok(ids.every((id) => dataverse.store.get('leads', id)?._modifiedby_value === dataverse.store.defaultUserId))
})

t.test('UpdateMultiple with one invalid target rejects with Dataverse\'s code and message, and writes none of them', async (t) => {
  const good = dataverse.store.insert('leads', { lastname: 'Good', jobtitle: 'Before' })
  const bad = dataverse.store.insert('leads', { lastname: 'Bad' })
  const error = await rejection(api.callAction({
    collection: 'leads',
    actionName: 'Microsoft.Dynamics.CRM.UpdateMultiple',
    action: {
      Targets: [
        { '@odata.type': 'Microsoft.Dynamics.CRM.lead', leadid: good, jobtitle: 'After' },
        { '@odata.type': 'Microsoft.Dynamics.CRM.lead', leadid: bad, lastname: '' }
      ]
    }
  }))
  t.equal(error.status, 400)
  t.equal(error.code, '0x80040203')
  t.match(error.message, /'lastname' attribute of the 'lead' entity is required/)
  t.equal(dataverse.store.get('leads', good)?.jobtitle, 'Before')
})

t.test('UpdateMultiple on contacts naming a deleted contact rejects with 404 "Contact With Ids = … Do Not Exist"', async (t) => {
  const gone = dataverse.store.insert('contacts', { lastname: 'Gone' })
  dataverse.store.delete('contacts', gone)
  const error = await rejection(api.callAction({
    collection: 'contacts',
    actionName: 'Microsoft.Dynamics.CRM.UpdateMultiple',
    action: { Targets: [{ '@odata.type': 'Microsoft.Dynamics.CRM.contact', contactid: gone, jobtitle: 'Ghost' }] }
  }))
  t.equal(error.status, 404)
  t.equal(error.code, '0x80040217')
  t.equal(error.message, `Contact With Ids = ${gone} Do Not Exist`)
})

t.test('MSAL\'s cache keeps Azure AD calls to one while Dataverse sees many', async (t) => {
  t.equal(aad.tokenRequestCount(), 1)
  t.ok(dataverse.requestCount() > 10)
})

t.test('a token for another resource is refused with 401', async (t) => {
  const other = createMsalAccessTokenProvider({
    authorityHost: aad.authorityHost,
    tenantId,
    clientId: client.clientId,
    credential: { kind: 'secret', clientSecret: client.clientSecret },
    resourceUrl: 'https://other.crm.dynamics.com'
  })
  const wrongAudience = new DynamicsWebApi({ serverUrl: dataverse.url, onTokenRefresh: () => other.getAccessToken() })
  const error = await rejection(wrongAudience.retrieveMultiple({ collection: 'leads' }))
  t.equal(error.status, 401)
})

t.test('$batch: creates and updates in one change set and a GET outside it come back in request order', async (t) => {
  const existing = dataverse.store.insert('leads', { lastname: 'Batched', jobtitle: 'Before' })
  api.startBatch()
  void api.create({ collection: 'leads', data: { firstname: 'Bea', lastname: 'Batch' }, contentId: '1' })
  // `$1` alone addresses the row the part with Content-ID 1 created (DWA then sends `PATCH $1`).
  void api.update({ contentId: '$1', data: { jobtitle: 'Created then updated' } })
  void api.update({ collection: 'leads', key: existing, data: { jobtitle: 'After' } })
  void api.retrieve({ collection: 'leads', key: existing, select: ['jobtitle'] })
  const results = await api.executeBatch()
  t.equal(results.length, 4)
  const createdId = String(results[0])
  t.match(createdId, /^[0-9a-f-]{36}$/, 'the create answers the new id from OData-EntityId')
  t.match(dataverse.store.get('leads', createdId), { firstname: 'Bea', jobtitle: 'Created then updated' })
  t.equal(dataverse.store.get('leads', existing)?.jobtitle, 'After')
  t.match(results[3], { jobtitle: 'After' }, 'the GET outside the change set sees the change set\'s writes')
})

t.test('$batch: one failing request in a change set applies none of it and rejects with Dataverse\'s error', async (t) => {
  const kept = dataverse.store.insert('leads', { lastname: 'Kept', jobtitle: 'Untouched' })
  const before = dataverse.store.list('leads').length
  api.startBatch()
  void api.create({ collection: 'leads', data: { lastname: 'Never stored' } })
  void api.update({ collection: 'leads', key: kept, data: { jobtitle: 'Changed' } })
  void api.update({ collection: 'leads', key: kept, data: { lastname: '' } })
  const rejected = await api.executeBatch().then(
    () => { throw new Error('expected the batch to fail') },
    (errors: unknown) => errors as DwaError[]
  )
  t.ok(Array.isArray(rejected), 'dynamics-web-api rejects with the parts it read')
  // A batch part's error keeps Dataverse's envelope under `error` (DWA parseBatchResponse).
  t.match(rejected[0], { status: 400, error: { code: '0x80040203', message: /'lastname' attribute of the 'lead' entity is required/ } })
  t.equal(dataverse.store.list('leads').length, before, 'the create was undone')
  t.equal(dataverse.store.get('leads', kept)?.jobtitle, 'Untouched', 'the update was undone')
})

t.test('$batch with continueOnError: every request runs and failures come back inline', async (t) => {
  const missing = randomUUID()
  api.startBatch()
  void api.update({ collection: 'leads', key: missing, data: { jobtitle: 'Ghost' }, inChangeSet: false })
  void api.create({ collection: 'leads', data: { lastname: 'Still created' }, inChangeSet: false })
  void api.retrieveMultiple({ collection: 'leads', select: ['lastname'], filter: "lastname eq 'Still created'" })
  const results = await api.executeBatch({ continueOnError: true })
  t.equal(results.length, 3)
  t.ok(results[0] instanceof Error, 'the failed update is an Error in its place')
  t.match(results[0], { status: 404, error: { code: '0x80040217' } })
  t.match(String(results[1]), /^[0-9a-f-]{36}$/)
  t.same(results[2].value.map((row: Record<string, unknown>) => row.lastname), ['Still created'])
})

t.test('the sync filter new_synctomkto: empty on a new lead, written No and read back', async (t) => {
  const id = String(await api.create({ collection: 'leads', data: { lastname: 'Filtered' } }))
  t.equal((await api.retrieve<Record<string, unknown>>({ collection: 'leads', key: id, select: ['new_synctomkto'] })).new_synctomkto, null, 'no default: "Field is empty"')
  await api.update({ collection: 'leads', key: id, data: { new_synctomkto: false } })
  t.equal((await api.retrieve<Record<string, unknown>>({ collection: 'leads', key: id, select: ['new_synctomkto'] })).new_synctomkto, false)
})

t.test('QualifyLead through callAction on a lead: a contact with originatingleadid, the lead Qualified, the contact answered', async (t) => {
  const leadId = String(await api.create({ collection: 'leads', data: { firstname: 'Mary', lastname: 'Jackson', emailaddress1: 'mary.jackson@example.com', jobtitle: 'Engineer', companyname: 'NACA' } }))
  const result = await api.callAction<{ value: Array<Record<string, string>> }>({
    collection: 'leads',
    key: leadId,
    actionName: 'Microsoft.Dynamics.CRM.QualifyLead',
    action: { CreateAccount: false, CreateContact: true, CreateOpportunity: false, Status: 3 }
  })
  t.equal(result.value.length, 1)
  t.match(result.value[0], { '@odata.type': '#Microsoft.Dynamics.CRM.contact', contactid: /^[0-9a-f-]{36}$/ })
  const contact = await api.retrieve<Record<string, unknown>>({ collection: 'contacts', key: result.value[0]!.contactid!, select: ['firstname', 'lastname', 'emailaddress1', 'jobtitle', '_originatingleadid_value', 'new_synctomkto'] })
  t.match(contact, { firstname: 'Mary', lastname: 'Jackson', emailaddress1: 'mary.jackson@example.com', jobtitle: 'Engineer', _originatingleadid_value: leadId, new_synctomkto: null })
  t.match(await api.retrieve<Record<string, unknown>>({ collection: 'leads', key: leadId, select: ['statecode', 'statuscode'] }), { statecode: 1, statuscode: 3 })

  const again = await rejection(api.callAction({ collection: 'leads', key: leadId, actionName: 'Microsoft.Dynamics.CRM.QualifyLead', action: { CreateAccount: false, CreateContact: true, CreateOpportunity: false, Status: 3 } }))
  t.equal(again.status, 400, 'a qualified lead is not qualified twice')
  const missing = await rejection(api.callAction({ collection: 'leads', key: leadId, actionName: 'Microsoft.Dynamics.CRM.QualifyLead', action: { CreateContact: true } }))
  t.equal(missing.status, 400, 'the required parameters are required')
})

t.test('a contact created with an originatingleadid binding reads it back as _originatingleadid_value', async (t) => {
  const leadId = dataverse.store.insert('leads', { lastname: 'Origin' })
  const contactId = String(await api.create({ collection: 'contacts', data: { lastname: 'Origin', 'originatingleadid@odata.bind': `/leads(${leadId})` } }))
  t.equal((await api.retrieve<Record<string, unknown>>({ collection: 'contacts', key: contactId, select: ['_originatingleadid_value'] }))._originatingleadid_value, leadId)
})
