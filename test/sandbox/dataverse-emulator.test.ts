import { randomUUID } from 'node:crypto'
import t from 'tap'
import type { DataverseEmulator } from '../../sandbox/dataverse/index.ts'
import { SANDBOX_BEARER, sendToWebApi, startedDataverseEmulator, type WebApiReply } from '../helpers/dataverse-emulator.ts'

/** The Dataverse emulator over real HTTP with plain fetch: the wire, not the internals. */

const TOKEN = SANDBOX_BEARER

const started = startedDataverseEmulator

type Reply = WebApiReply

async function call (emulator: DataverseEmulator, method: string, path: string, options: { body?: unknown, headers?: Record<string, string> } = {}): Promise<Reply> {
  return await sendToWebApi(`${emulator.url}/api/data/v9.2/${path}`, method, options)
}

async function filterNames (emulator: DataverseEmulator, filter: string): Promise<string[]> {
  const reply = await call(emulator, 'GET', `leads?$select=fullname&$orderby=fullname asc&$filter=${encodeURIComponent(filter)}`)
  if (reply.status !== 200) throw new Error(`filter ${filter} → ${reply.status} ${JSON.stringify(reply.body)}`)
  return (reply.body.value as Array<{ fullname: string }>).map((row) => row.fullname)
}

t.test('$filter', async (t) => {
  const emulator = await started(t)
  const ownerId = emulator.store.insert('systemusers', { firstname: 'Owner', lastname: 'One' })
  emulator.store.insert('leads', { firstname: 'Ann', lastname: "O'Brien", companyname: 'Acme', donotemail: true, leadsourcecode: 8, createdon: '2024-01-01T00:00:00Z', modifiedon: '2024-03-01T12:00:00Z', _ownerid_value: ownerId })
  emulator.store.insert('leads', { firstname: 'Bob', lastname: 'Builder', companyname: 'ACME Tools', donotemail: false, leadsourcecode: 1, createdon: '2024-02-01T00:00:00Z', modifiedon: '2024-02-15T00:00:00Z' })
  emulator.store.insert('leads', { firstname: 'Cid', lastname: 'Cook', companyname: null, emailaddress1: 'cid@example.com', leadsourcecode: 10, createdon: '2024-03-01T00:00:00Z', modifiedon: '2024-03-02T00:00:00Z' })

  t.same(await filterNames(emulator, "companyname eq 'acme'"), ["Ann O'Brien"], 'eq on strings is case-insensitive')
  t.same(await filterNames(emulator, "lastname eq 'O''Brien'"), ["Ann O'Brien"], "'' escapes a quote")
  t.same(await filterNames(emulator, "contains(companyname, 'acme')"), ["Ann O'Brien", 'Bob Builder'])
  t.same(await filterNames(emulator, "startswith(lastname,'co')"), ['Cid Cook'])
  t.same(await filterNames(emulator, "endswith(emailaddress1, '@EXAMPLE.com')"), ['Cid Cook'])
  t.same(await filterNames(emulator, 'companyname eq null'), ['Cid Cook'])
  t.same(await filterNames(emulator, 'companyname ne null'), ["Ann O'Brien", 'Bob Builder'])
  t.same(await filterNames(emulator, 'donotemail eq true'), ["Ann O'Brien"])
  t.same(await filterNames(emulator, 'donotemail eq false'), ['Bob Builder', 'Cid Cook'])
  t.same(await filterNames(emulator, 'leadsourcecode ge 8'), ["Ann O'Brien", 'Cid Cook'])
  t.same(await filterNames(emulator, 'leadsourcecode lt 8'), ['Bob Builder'])
  t.same(await filterNames(emulator, 'modifiedon gt 2024-02-20T00:00:00Z'), ["Ann O'Brien", 'Cid Cook'], 'unquoted ISO datetimes compare as times')
  t.same(await filterNames(emulator, 'createdon le 2024-02-01T00:00:00Z'), ["Ann O'Brien", 'Bob Builder'])
  t.same(await filterNames(emulator, "modifiedon ge 2024-03-01T12:00:00Z and modifiedon lt 2024-03-02T00:00:00Z"), ["Ann O'Brien"])
  t.same(await filterNames(emulator, `_ownerid_value eq ${ownerId}`), ["Ann O'Brien"], 'lookups as _x_value with unquoted guids')
  t.same(await filterNames(emulator, "leadsourcecode eq 1 or leadsourcecode eq 10 and lastname eq 'Builder'"), ['Bob Builder'], 'and binds tighter than or')
  // An `or` of `eq` on one column (the flow step's look-ups by email) is answered through a set of
  // candidates; the answers must be those of the full evaluation.
  t.same(await filterNames(emulator, "lastname eq 'COOK' or lastname eq 'builder' or lastname eq 'nobody'"), ['Bob Builder', 'Cid Cook'], 'or of eq, case-insensitive')
  t.same(await filterNames(emulator, "(lastname eq 'cook' or lastname eq 'builder') and leadsourcecode ge 8"), ['Cid Cook'], 'candidates and-ed with another condition')
  t.same(await filterNames(emulator, "lastname eq 'cook' or companyname eq 'acme'"), ["Ann O'Brien", 'Cid Cook'], 'eq on two columns is evaluated in full')
  t.same(await filterNames(emulator, "modifiedon eq '2024-03-01T12:30:00.000Z' or lastname eq 'cook'"), ['Cid Cook'], 'a quoted time is left to the full evaluation')
  t.same(await filterNames(emulator, "(leadsourcecode eq 1 or leadsourcecode eq 10) and startswith(firstname, 'c')"), ['Cid Cook'], 'parentheses group')
  t.same(await filterNames(emulator, "not contains(companyname, 'tools') and companyname ne null"), ["Ann O'Brien"])
  t.same(await filterNames(emulator, "contains(companyname,'acme') eq false"), ['Cid Cook'], 'a function compared with a boolean')

  const unknown = await call(emulator, 'GET', `leads?$filter=${encodeURIComponent("nosuchcolumn eq 'x'")}`)
  t.equal(unknown.status, 400)
  t.same(unknown.body, { error: { code: '0x0', message: "Could not find a property named 'nosuchcolumn' on type 'Microsoft.Dynamics.CRM.lead'." } })

  const broken = await call(emulator, 'GET', `leads?$filter=${encodeURIComponent("lastname eq 'unterminated")}`)
  t.equal(broken.status, 400)
  t.equal(broken.body.error.code, '0x0')

  const badSelect = await call(emulator, 'GET', 'leads?$select=Lastname')
  t.equal(badSelect.status, 400, 'property names are case-sensitive')
})

t.test('headers, dates and etags look like Dataverse', async (t) => {
  const emulator = await started(t)
  const created = await call(emulator, 'POST', 'leads', { body: { lastname: 'Header' } })
  t.equal(created.status, 204)
  const entityId = created.headers.get('odata-entityid') ?? ''
  t.match(entityId, new RegExp(`^${emulator.url}/api/data/v9\\.2/leads\\([0-9a-f-]{36}\\)$`))
  t.equal(created.headers.get('odata-version'), '4.0')

  const id = /\(([^)]+)\)$/.exec(entityId)?.[1] ?? ''
  const fetched = await call(emulator, 'GET', `leads(${id})`)
  t.equal(fetched.status, 200)
  t.equal(fetched.headers.get('content-type'), 'application/json; odata.metadata=minimal')
  t.match(fetched.body.createdon, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/, 'no milliseconds')
  t.equal(fetched.body['@odata.etag'], `W/"${String(fetched.body.versionnumber)}"`)
  t.equal(fetched.body['@odata.context'], `${emulator.url}/api/data/v9.2/$metadata#leads/$entity`)

  const notModified = await call(emulator, 'GET', `leads(${id})`, { headers: { 'If-None-Match': fetched.body['@odata.etag'] } })
  t.equal(notModified.status, 304)

  const representation = await call(emulator, 'POST', 'contacts?$select=fullname', { body: { firstname: 'Rep', lastname: 'Resent' }, headers: { Prefer: 'return=representation' } })
  t.equal(representation.status, 201)
  t.equal(representation.body.fullname, 'Rep Resent')
  t.ok(representation.body.contactid)
  t.equal(representation.headers.get('odata-entityid'), null)

  const whoAmI = await call(emulator, 'GET', 'WhoAmI')
  t.equal(whoAmI.body.UserId, emulator.store.defaultUserId)
})

t.test('field length limits', async (t) => {
  const emulator = await started(t)
  const atLimit = await call(emulator, 'POST', 'leads', { body: { lastname: 'x', subject: 's'.repeat(300), mobilephone: '1'.repeat(20), companyname: 'c'.repeat(100) } })
  t.equal(atLimit.status, 204, 'exactly the documented maximum is accepted')

  const cases: Array<[string, string, number, string]> = [
    ['leads', 'subject', 300, 'lead'],
    ['leads', 'mobilephone', 20, 'lead'],
    ['leads', 'emailaddress1', 100, 'lead'],
    ['contacts', 'lastname', 50, 'contact'],
    ['contacts', 'address1_postalcode', 20, 'contact']
  ]
  for (const [entitySet, column, max, logicalName] of cases) {
    const reply = await call(emulator, 'POST', entitySet, { body: { lastname: 'x', [column]: 'y'.repeat(max + 1) } })
    t.equal(reply.status, 400, `${entitySet}.${column} over ${max}`)
    t.same(reply.body, {
      error: {
        code: '0x80044331',
        message: `A validation error occurred. The length of the '${column}' attribute of the '${logicalName}' entity exceeded the maximum allowed length of '${max}'.`
      }
    })
  }
  t.equal(emulator.store.list('leads').length, 1, 'refused rows are not stored')

  const wrongType = await call(emulator, 'POST', 'leads', { body: { lastname: 'x', donotemail: 'yes' } })
  t.equal(wrongType.status, 400)
})

t.test('required fields are configurable', async (t) => {
  const emulator = await started(t, { requiredFields: { contacts: ['lastname', 'emailaddress1'] } })
  const missing = await call(emulator, 'POST', 'contacts', { body: { lastname: 'Only' } })
  t.equal(missing.status, 400)
  t.equal(missing.body.error.code, '0x80040203')
  t.match(missing.body.error.message, "'emailaddress1' attribute of the 'contact' entity is required")

  const ok = await call(emulator, 'POST', 'contacts', { body: { lastname: 'Both', emailaddress1: 'both@example.com' } })
  t.equal(ok.status, 204)
  const id = /\(([^)]+)\)$/.exec(ok.headers.get('odata-entityid') ?? '')?.[1] ?? ''

  const emptied = await call(emulator, 'PATCH', `contacts(${id})`, { body: { emailaddress1: null }, headers: { 'If-Match': '*' } })
  t.equal(emptied.status, 400, 'a required column cannot be emptied')
  const untouched = await call(emulator, 'PATCH', `contacts(${id})`, { body: { jobtitle: 'Boss' }, headers: { 'If-Match': '*' } })
  t.equal(untouched.status, 204, 'an update that does not name the column passes')

  const leadsUnaffected = await call(emulator, 'POST', 'leads', { body: { firstname: 'NoLastName' } })
  t.equal(leadsUnaffected.status, 204, 'without configuration only system rules apply (Dataverse enforces SystemRequired only)')
})

t.test('lookups and bindings', async (t) => {
  const emulator = await started(t)
  const accountId = emulator.store.insert('accounts', { name: 'Contoso' })
  const bound = await call(emulator, 'POST', 'contacts', { body: { lastname: 'Bound', 'parentcustomerid_account@odata.bind': `/accounts(${accountId})` }, headers: { Prefer: 'return=representation' } })
  t.equal(bound.status, 201)
  t.equal(bound.body._parentcustomerid_value, accountId)
  t.equal(bound.body._ownerid_value, emulator.store.defaultUserId, 'owner defaults to the calling user')

  const ghostOwner = await call(emulator, 'POST', 'leads', { body: { lastname: 'Ghost', 'ownerid@odata.bind': `/systemusers(${randomUUID()})` } })
  t.equal(ghostOwner.status, 400)
  t.equal(ghostOwner.body.error.code, '0x80048d19')

  const undeclared = await call(emulator, 'POST', 'contacts', { body: { lastname: 'X', 'parentcustomerid@odata.bind': `/accounts(${accountId})` } })
  t.equal(undeclared.status, 400)
  t.equal(undeclared.body.error.code, '0x80048d19')
  t.match(undeclared.body.error.message, "undeclared property 'parentcustomerid'")
})

t.test('update, upsert and delete preconditions', async (t) => {
  const emulator = await started(t)
  const id = randomUUID()
  const createdByUpsert = await call(emulator, 'PATCH', `leads(${id})`, { body: { lastname: 'Upsert' } })
  t.equal(createdByUpsert.status, 204)
  t.equal(createdByUpsert.headers.get('odata-entityid'), `${emulator.url}/api/data/v9.2/leads(${id})`)

  const conflict = await call(emulator, 'PATCH', `leads(${id})`, { body: { lastname: 'Again' }, headers: { 'If-None-Match': '*' } })
  t.equal(conflict.status, 412)
  t.equal(conflict.body.error.message, 'A record with matching key values already exists.')

  const current = await call(emulator, 'GET', `leads(${id})?$select=lastname`)
  const etag = current.body['@odata.etag'] as string
  const matching = await call(emulator, 'PATCH', `leads(${id})`, { body: { lastname: 'Matched' }, headers: { 'If-Match': etag, Prefer: 'return=representation' } })
  t.equal(matching.status, 200)
  t.equal(matching.body.lastname, 'Matched')
  t.not(matching.body['@odata.etag'], etag, 'the etag changes with the row')

  const stale = await call(emulator, 'PATCH', `leads(${id})`, { body: { lastname: 'Stale' }, headers: { 'If-Match': etag } })
  t.equal(stale.status, 412)
  t.equal(stale.body.error.message, "The version of the existing record doesn't match the RowVersion property provided.")
  t.equal(emulator.store.get('leads', id)?.lastname, 'Matched')

  const missing = randomUUID()
  const notFound = await call(emulator, 'PATCH', `leads(${missing})`, { body: { lastname: 'No' }, headers: { 'If-Match': '*' } })
  t.equal(notFound.status, 404)
  t.same(notFound.body, { error: { code: '0x80040217', message: `lead With Id = ${missing} Does Not Exist` } })

  t.equal((await call(emulator, 'DELETE', `leads(${id})`)).status, 204)
  t.equal((await call(emulator, 'DELETE', `leads(${id})`)).status, 404)
  t.equal((await call(emulator, 'GET', `leads(${id})`)).status, 404)

  const unknownSet = await call(emulator, 'GET', 'Leads')
  t.equal(unknownSet.status, 404)
  t.equal(unknownSet.body.error.code, '0x8006088a')
})

t.test('paging with odata.maxpagesize, $count and $top', async (t) => {
  const emulator = await started(t)
  for (let index = 0; index < 7; index++) emulator.store.insert('contacts', { firstname: `N${index}`, lastname: 'Page' })

  const seen: string[] = []
  let next: string | undefined = `${emulator.url}/api/data/v9.2/contacts?$select=firstname&$orderby=firstname asc&$count=true&$top=1`
  let pages = 0
  while (next !== undefined) {
    const response: Response = await fetch(next, { headers: { Authorization: TOKEN, Prefer: 'odata.maxpagesize=3' } })
    const body = await response.json() as { value: Array<{ firstname: string }>, '@odata.nextLink'?: string, '@odata.count'?: number }
    t.equal(response.headers.get('preference-applied'), 'odata.maxpagesize=3')
    t.equal(body['@odata.count'], 7, '$count counts every match, not the page')
    seen.push(...body.value.map((row) => row.firstname))
    next = body['@odata.nextLink']
    if (next !== undefined) t.ok(next.startsWith(`${emulator.url}/api/data/v9.2/contacts?`), 'nextLink uses the request\'s own host and port')
    pages += 1
  }
  t.equal(pages, 3)
  t.same(seen, ['N0', 'N1', 'N2', 'N3', 'N4', 'N5', 'N6'], '$top is ignored with a page size, every row once in order')

  const topOnly = await call(emulator, 'GET', 'contacts?$top=2')
  t.equal(topOnly.body.value.length, 2)
  t.equal(topOnly.body['@odata.nextLink'], undefined)

  const count = await call(emulator, 'GET', 'contacts/$count')
  t.equal(count.body, '7')

  const skip = await call(emulator, 'GET', 'contacts?$skip=2')
  t.equal(skip.status, 400, '$skip is not supported by Dataverse')
})

t.test('fault injection, in process and over HTTP', async (t) => {
  const emulator = await started(t)

  emulator.faults.throttleNext(2, 5)
  for (let attempt = 0; attempt < 2; attempt++) {
    const throttled = await call(emulator, 'GET', 'leads')
    t.equal(throttled.status, 429)
    t.equal(throttled.headers.get('retry-after'), '5')
    t.same(throttled.body, { error: { code: '0x80072322', message: 'Number of requests exceeded the limit of 6000 over time window of 300 seconds.' } })
  }
  t.equal((await call(emulator, 'GET', 'leads')).status, 200, 'the third request passes')

  const put = await fetch(`${emulator.url}/_emulator/faults`, { method: 'PUT', body: JSON.stringify({ fail: { count: 1, status: 502 } }) })
  t.equal(put.status, 200)
  t.equal((await call(emulator, 'POST', 'leads', { body: { lastname: 'Failing' } })).status, 502)
  t.equal(emulator.store.list('leads').length, 0, 'a failed request has no effect')
  t.equal((await call(emulator, 'POST', 'leads', { body: { lastname: 'Passing' } })).status, 204)

  await fetch(`${emulator.url}/_emulator/faults`, { method: 'PUT', body: JSON.stringify({ fail: { count: 5 }, latencyMs: 120 }) })
  const state = await (await fetch(`${emulator.url}/_emulator/faults`)).json() as { fail: { count: number, status: number }, latencyMs: number }
  t.same(state.fail, { count: 5, status: 503 })
  const startedAt = performance.now()
  t.equal((await call(emulator, 'GET', 'leads')).status, 503)
  t.ok(performance.now() - startedAt >= 100, 'latency is added before the answer')
  t.equal((await fetch(`${emulator.url}/_emulator/faults`, { method: 'DELETE' })).status, 204)
  t.equal((await call(emulator, 'GET', 'leads')).status, 200, 'DELETE clears every fault')

  const badSettings = await fetch(`${emulator.url}/_emulator/faults`, { method: 'PUT', body: JSON.stringify({ throttle: { count: -1, retryAfterSeconds: 1 } }) })
  t.equal(badSettings.status, 400)

  const records = await (await fetch(`${emulator.url}/_emulator/records/leads`)).json() as Array<{ lastname: string }>
  t.same(records.map((row) => row.lastname), ['Passing'])
})

t.test('a write answered after the client\'s timeout has still happened (delayResponsesAfterCommit)', async (t) => {
  const emulator = await started(t)
  emulator.faults.delayResponsesAfterCommit(1, 1_000)
  t.same(emulator.faults.state().delayAfterCommit, { count: 1, ms: 1_000 })

  const lookUp = await call(emulator, 'GET', 'leads')
  t.equal(lookUp.status, 200, 'a read does not use up the count')
  const timedOut = await fetch(`${emulator.url}/api/data/v9.2/leads`, {
    method: 'POST',
    headers: { Authorization: TOKEN, 'Content-Type': 'application/json' },
    body: JSON.stringify({ lastname: 'Late' }),
    signal: AbortSignal.timeout(200)
  }).then(() => 'answered', (error: Error) => error.name)
  t.equal(timedOut, 'TimeoutError', 'the client gives up before the answer')
  t.same(emulator.store.list('leads').map((row) => row.lastname), ['Late'], 'but the row was created')
  t.equal(emulator.faults.state().delayAfterCommit.count, 0)

  const startedAt = performance.now()
  t.equal((await call(emulator, 'POST', 'leads', { body: { lastname: 'Prompt' } })).status, 204)
  t.ok(performance.now() - startedAt < 500, 'the next write is answered at once')

  const put = await fetch(`${emulator.url}/_emulator/faults`, { method: 'PUT', body: JSON.stringify({ delayAfterCommit: { count: 1, ms: 300 } }) })
  t.match(await put.json(), { delayAfterCommit: { count: 1, ms: 300 } })
  const heldFor = performance.now()
  t.equal((await call(emulator, 'POST', 'leads', { body: { lastname: 'Held' } })).status, 204, 'a patient client gets the normal answer')
  t.ok(performance.now() - heldFor >= 250, 'after the delay')
  const bad = await fetch(`${emulator.url}/_emulator/faults`, { method: 'PUT', body: JSON.stringify({ delayAfterCommit: { count: 1, ms: -5 } }) })
  t.equal(bad.status, 400)
})

t.test('authorisation and request counting', async (t) => {
  const emulator = await started(t, { verifyAccessToken: (token) => token === 'good' })
  const anonymous = await fetch(`${emulator.url}/api/data/v9.2/leads`)
  t.equal(anonymous.status, 401)
  t.match(anonymous.headers.get('www-authenticate') ?? '', /^Bearer authorization_uri=/)
  const bad = await fetch(`${emulator.url}/api/data/v9.2/leads`, { headers: { Authorization: 'Bearer bad' } })
  t.equal(bad.status, 401)
  const good = await fetch(`${emulator.url}/api/data/v9.2/leads`, { headers: { Authorization: 'Bearer good' } })
  t.equal(good.status, 200)
  await fetch(`${emulator.url}/api/data/v9.2/contacts`, { method: 'POST', headers: { Authorization: 'Bearer good', 'Content-Type': 'application/json' }, body: '{"lastname":"Counted"}' })
  await fetch(`${emulator.url}/_emulator/records/contacts`)

  t.equal(emulator.requestCount(), 4, 'control routes are not Web API requests')
  t.equal(emulator.requestCount({ entitySet: 'leads' }), 3)
  t.equal(emulator.requestCount({ method: 'POST', entitySet: 'contacts' }), 1)
  t.equal(emulator.requestCount({ method: 'get' }), 3)
})

t.test('store: seed, insert, clear', async (t) => {
  const userId = randomUUID()
  const emulator = await started(t, { seed: { systemusers: [{ systemuserid: userId, firstname: 'Seeded', lastname: 'User', isdisabled: false, accessmode: 0 }] } })
  const user = emulator.store.get('systemusers', userId)
  t.equal(user?.fullname, 'Seeded User')
  const leadId = emulator.store.insert('leads', { lastname: 'Stored' })
  t.equal(emulator.store.get('leads', leadId)?._ownerid_value, emulator.store.defaultUserId)
  emulator.store.clear()
  t.equal(emulator.store.list('leads').length, 0)
  t.same(emulator.store.list('systemusers').map((row) => row.systemuserid), [emulator.store.defaultUserId], 'the calling user survives clear()')
  t.throws(() => emulator.store.list('opportunities'), { code: 'UNKNOWN_ENTITY_SET' })
})
