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
