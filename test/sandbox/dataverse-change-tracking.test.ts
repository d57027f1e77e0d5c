import { randomUUID } from 'node:crypto'
import t from 'tap'
import type { DataverseEmulator } from '../../sandbox/dataverse/index.ts'
import { sendToWebApi, startedDataverseEmulator, type WebApiReply } from '../helpers/dataverse-emulator.ts'

/**
 * The Dataverse emulator's change tracking and authorship (reference doc §2) over real HTTP with
 * plain fetch: the initial tracked read, delta reads, `$deletedEntity`, paging, expired tokens,
 * `_modifiedby_value`.
 */


const started = startedDataverseEmulator

type Reply = WebApiReply

const send = sendToWebApi

function api (emulator: DataverseEmulator, path: string): string {
  return `${emulator.url}/api/data/v9.2/${path}`
}

const TRACK = { Prefer: 'odata.track-changes' }

type Tap = Pick<typeof t, 'equal'>

/** Follows nextLinks of a tracked read to its delta link; answers every page's value. */
async function readAll (t: Tap, first: Reply): Promise<{ pages: Reply[], value: any[], deltaLink: string }> {
  const pages = [first]
  let page = first
  while (page.body['@odata.nextLink'] !== undefined) {
    t.equal(page.body['@odata.deltaLink'], undefined, 'only the last page carries the delta link')
    page = await send(page.body['@odata.nextLink'], 'GET', { headers: { Prefer: 'odata.track-changes,odata.maxpagesize=2' } })
    if (page.status !== 200) throw new Error(`page → ${page.status} ${JSON.stringify(page.body)}`)
    pages.push(page)
  }
  return { pages, value: pages.flatMap((reply) => reply.body.value), deltaLink: page.body['@odata.deltaLink'] }
}

t.test('a tracked read answers the rows and a delta link; the delta link answers only what changed since', async (t) => {
  const emulator = await started(t)
  const kept = emulator.store.insert('leads', { firstname: 'Ann', lastname: 'Kept' })
  const edited = emulator.store.insert('leads', { firstname: 'Bob', lastname: 'Edited' })
  const removed = emulator.store.insert('leads', { firstname: 'Cid', lastname: 'Removed' })

  const initial = await send(api(emulator, 'leads?$select=firstname,lastname'), 'GET', { headers: TRACK })
  t.equal(initial.status, 200)
  t.equal(initial.headers.get('preference-applied'), 'odata.track-changes')
  t.equal(initial.body['@odata.context'], `${emulator.url}/api/data/v9.2/$metadata#leads(firstname,lastname)`)
  t.same(initial.body.value.map((row: any) => row.leadid).sort(), [kept, edited, removed].sort(), 'every row')
  const deltaLink: string = initial.body['@odata.deltaLink']
  t.match(deltaLink, new RegExp(`^${emulator.url}/api/data/v9\\.2/leads\\?\\$select=firstname%2Clastname&\\$deltatoken=\\d+%21\\d\\d%2F\\d\\d%2F\\d{4}%20\\d\\d%3A\\d\\d%3A\\d\\d$`),
    'the delta link keeps the $select and carries a version!timestamp token, on the base URL the client used')

  const unchanged = await send(deltaLink, 'GET')
  t.equal(unchanged.status, 200)
  t.same(unchanged.body.value, [], 'nothing changed: an empty value')
  t.equal(unchanged.body['@odata.context'], `${emulator.url}/api/data/v9.2/$metadata#leads(firstname,lastname)/$delta`)

  emulator.store.update('leads', edited, { firstname: 'Robert' })
  const created = emulator.store.insert('leads', { firstname: 'Dee', lastname: 'Created' })
  emulator.store.delete('leads', removed)
  const delta = await send(deltaLink, 'GET', { headers: TRACK })
  t.equal(delta.status, 200)
  t.same(delta.body.value.map((row: any) => row.leadid ?? row.id), [edited, created, removed], 'updated and created rows by version, then deletes')
  t.match(delta.body.value[0], { firstname: 'Robert', lastname: 'Edited', '@odata.etag': /^W\/"\d+"$/ }, 'a changed row comes with its selected columns')
  t.same(delta.body.value[2], {
    '@odata.context': `${emulator.url}/api/data/v9.2/$metadata#leads/$deletedEntity`,
    id: removed,
    reason: 'deleted'
  })

  const next = await send(delta.body['@odata.deltaLink'], 'GET')
  t.same(next.body.value, [], 'the new delta link starts after those changes')
  const again = await send(deltaLink, 'GET')
  t.equal(again.body.value.length, 3, 'an old delta link still answers its changes until it expires')
})

t.test('a row created and deleted between two reads still shows as deleted; other tables stay out', async (t) => {
  const emulator = await started(t)
  const deltaLink = (await send(api(emulator, 'contacts?$select=lastname'), 'GET', { headers: TRACK })).body['@odata.deltaLink']
  const fleeting = emulator.store.insert('contacts', { lastname: 'Fleeting' })
  emulator.store.delete('contacts', fleeting)
  emulator.store.delete('leads', emulator.store.insert('leads', { lastname: 'Elsewhere' }))
  const delta = await send(deltaLink, 'GET')
  t.same(delta.body.value.map((row: any) => [row.id, row.reason]), [[fleeting, 'deleted']])
})

t.test('paging within a tracked read: nextLinks to the last page, which alone has the delta link; writes while paging come in the next delta', async (t) => {
  const emulator = await started(t)
  const ids = Array.from({ length: 5 }, (_, index) => emulator.store.insert('leads', { lastname: `Row ${index}` }))

  const first = await send(api(emulator, 'leads?$select=lastname'), 'GET', { headers: { Prefer: 'odata.track-changes,odata.maxpagesize=2' } })
  t.equal(first.headers.get('preference-applied'), 'odata.track-changes,odata.maxpagesize=2')
  t.equal(first.body.value.length, 2)
  // A write between pages: an untouched row moves to the end of the version order.
  emulator.store.update('leads', ids[0] as string, { lastname: 'Edited while paging' })
  const added = emulator.store.insert('leads', { lastname: 'Added while paging' })
  const initial = await readAll(t, first)
  t.same(initial.pages.map((page) => page.body.value.length), [2, 2, 1])
  t.same(new Set(initial.value.map((row) => row.leadid)), new Set(ids), 'each row of the snapshot once, none added after it')

  emulator.store.delete('leads', ids[1] as string)
  emulator.store.delete('leads', ids[2] as string)
  emulator.store.delete('leads', ids[3] as string)
  const delta = await readAll(t, await send(initial.deltaLink, 'GET', { headers: { Prefer: 'odata.track-changes,odata.maxpagesize=2' } }))
  t.same(delta.value.map((row) => row.leadid ?? row.id), [ids[0], added, ids[1], ids[2], ids[3]], 'the edit and the create first, then the deletes')
  t.same(delta.pages.map((page) => page.body.value.length), [2, 2, 1])
  t.match(delta.value[0], { lastname: 'Edited while paging' })
  t.same((await send(delta.deltaLink, 'GET')).body.value, [])
})

t.test('expired and unknown delta tokens answer ExpiredVersionStamp; a full read starts again', async (t) => {
  const emulator = await started(t)
  emulator.store.insert('leads', { lastname: 'Before' })
  const deltaLink: string = (await send(api(emulator, 'leads?$select=lastname'), 'GET', { headers: TRACK })).body['@odata.deltaLink']

  emulator.changeTracking.expireTokens()
  const expired = await send(deltaLink, 'GET')
  t.equal(expired.status, 400)
  t.same(expired.body, { error: { code: '0x80044352', message: 'Version stamp associated with the client has expired. Please perform a full sync.' } })

  const fresh = await send(api(emulator, 'leads?$select=lastname'), 'GET', { headers: TRACK })
  t.equal(fresh.body.value.length, 1, 'a full read answers the rows again')
  t.equal((await send(fresh.body['@odata.deltaLink'], 'GET')).status, 200, 'and its delta link is good at once')

  const unknown = await send(api(emulator, `leads?$select=lastname&$deltatoken=${encodeURIComponent('999999999!01/01/2030 00:00:00')}`), 'GET')
  t.equal(unknown.body.error.code, '0x80044352', 'a token for a version the org never reached')
  const garbage = await send(api(emulator, 'leads?$deltatoken=not-a-token'), 'GET')
  t.equal(garbage.body.error.code, '0x80044352')

  const overHttp = await fetch(`${emulator.url}/_emulator/change-tracking/expire-tokens`, { method: 'POST' })
  t.equal(overHttp.status, 204)
  t.equal((await send(fresh.body['@odata.deltaLink'], 'GET')).body.error?.code, '0x80044352', 'the control expires tokens over HTTP too')
})

t.test('a token older than the lifetime expires', async (t) => {
  const emulator = await started(t, { changeTracking: { tokenLifetimeMs: 60_000 } })
  const deltaLink: string = (await send(api(emulator, 'leads'), 'GET', { headers: TRACK })).body['@odata.deltaLink']
  const version = /\$deltatoken=(\d+)%21/.exec(deltaLink)?.[1]
  const twoMinutesAgo = new Date(Date.now() - 120_000)
  const two = (value: number): string => String(value).padStart(2, '0')
  const old = `${version}!${two(twoMinutesAgo.getUTCMonth() + 1)}/${two(twoMinutesAgo.getUTCDate())}/${twoMinutesAgo.getUTCFullYear()} ${two(twoMinutesAgo.getUTCHours())}:${two(twoMinutesAgo.getUTCMinutes())}:${two(twoMinutesAgo.getUTCSeconds())}`
  t.equal((await send(api(emulator, `leads?$deltatoken=${encodeURIComponent(old)}`), 'GET')).body.error?.code, '0x80044352')
  t.equal((await send(deltaLink, 'GET')).status, 200, 'a token within the lifetime is good')
})

t.test('$filter, $orderby, $expand and $top are refused with track-changes', async (t) => {
  const emulator = await started(t)
  for (const option of ['$filter=lastname eq \'x\'', '$orderby=lastname asc', '$top=1', '$expand=ownerid']) {
    const reply = await send(api(emulator, `leads?${option}`), 'GET', { headers: TRACK })
    const name = option.split('=')[0]
    t.equal(reply.status, 400, option)
    t.equal(reply.body.error.message, `The "${name}" query parameter isn't supported when Change Tracking is enabled.`)
  }
})

t.test('tables without change tracking ignore the preference', async (t) => {
  const emulator = await started(t, { changeTracking: { disabledFor: ['contacts'] } })
  emulator.store.insert('contacts', { lastname: 'Plain' })
  for (const set of ['contacts', 'accounts']) {
    const reply = await send(api(emulator, set), 'GET', { headers: TRACK })
    t.equal(reply.status, 200, set)
    t.equal(reply.body['@odata.deltaLink'], undefined, `${set}: no delta link`)
    t.equal(reply.headers.get('preference-applied'), null)
  }
  t.equal((await send(api(emulator, 'contacts?$filter=lastname eq \'Plain\''), 'GET', { headers: TRACK })).body.value.length, 1, '$filter still works there')
  const leads = await send(api(emulator, 'leads'), 'GET', { headers: TRACK })
  t.type(leads.body['@odata.deltaLink'], 'string', 'leads keep theirs')
})

t.test('a table whose change tracking is turned on answers the preference from then on: Preference-Applied names only what was honoured', async (t) => {
  const emulator = await started(t, { changeTracking: { disabledFor: ['contacts'] } })
  for (const lastname of ['One', 'Two', 'Three']) emulator.store.insert('contacts', { lastname })
  const probe = { Prefer: 'odata.track-changes,odata.maxpagesize=1' }
  const off = await send(api(emulator, 'contacts?$select=contactid'), 'GET', { headers: probe })
  t.equal(off.status, 200)
  t.equal(off.headers.get('preference-applied'), 'odata.maxpagesize=1', 'off: the page size honoured, tracking not named')
  t.equal(off.body.value.length, 1)
  t.equal(off.body['@odata.deltaLink'], undefined)
  emulator.changeTracking.setTracked('contacts', true)
  const on = await send(api(emulator, 'contacts?$select=contactid'), 'GET', { headers: probe })
  t.equal(on.headers.get('preference-applied'), 'odata.track-changes,odata.maxpagesize=1', 'on: both named, on the first page (reference §1.2, §2)')
  t.equal(on.body.value.length, 1)
  t.type(on.body['@odata.nextLink'], 'string', 'more pages: the delta link comes only at the end')
  const { deltaLink, value } = await readAll(t, await send(api(emulator, 'contacts?$select=lastname'), 'GET', { headers: { Prefer: 'odata.track-changes,odata.maxpagesize=2' } }))
  t.same(value.map((row) => row.lastname).sort(), ['One', 'Three', 'Two'], 'a full read answers the rows written while tracking was off')
  t.match(deltaLink, /\$deltatoken=/)
})

t.test('rows carry createdon, modifiedon and who wrote them: the application user, or the user it impersonates', async (t) => {
  const emulator = await started(t)
  const appUser = emulator.store.defaultUserId
  const salesperson = emulator.store.insert('systemusers', { firstname: 'Sam', lastname: 'Seller' })

  const created = await send(api(emulator, 'leads'), 'POST', { body: { lastname: 'ByTheApp' }, headers: { Prefer: 'return=representation' } })
  t.equal(created.status, 201)
  t.match(created.body, { _createdby_value: appUser, _modifiedby_value: appUser, createdon: /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, modifiedon: /Z$/ })
  const id: string = created.body.leadid

  const edited = await send(api(emulator, `leads(${id})`), 'PATCH', { body: { jobtitle: 'Buyer' }, headers: { MSCRMCallerID: salesperson } })
  t.equal(edited.status, 204)
  t.match(emulator.store.get('leads', id), { _createdby_value: appUser, _modifiedby_value: salesperson }, 'an impersonated write is the person\'s')

  const whoAmI = await send(api(emulator, 'WhoAmI'), 'GET')
  t.equal(whoAmI.body.UserId, appUser)
  t.type(whoAmI.body.BusinessUnitId, 'string')
  t.type(whoAmI.body.OrganizationId, 'string')
  t.equal((await send(api(emulator, 'WhoAmI'), 'GET', { headers: { MSCRMCallerID: salesperson } })).body.UserId, salesperson)

  await send(api(emulator, `leads(${id})`), 'PATCH', { body: { jobtitle: 'Chief Buyer' } })
  t.equal(emulator.store.get('leads', id)?._modifiedby_value, appUser, 'the app\'s own write is the app user\'s again')

  const unknownUser = await send(api(emulator, `leads(${id})`), 'PATCH', { body: { jobtitle: 'x' }, headers: { MSCRMCallerID: randomUUID() } })
  t.equal(unknownUser.status, 404)
  t.equal(emulator.store.get('leads', id)?.jobtitle, 'Chief Buyer', 'nothing written as a user who does not exist')

  const clientSet = await send(api(emulator, `leads(${id})`), 'PATCH', { body: { _modifiedby_value: salesperson } })
  t.equal(clientSet.status, 400, 'a client cannot claim another author')

  const stored = emulator.store.insert('leads', { lastname: 'Seeded', _modifiedby_value: salesperson })
  t.equal(emulator.store.get('leads', stored)?._modifiedby_value, salesperson, 'the programmatic door names its author')
  t.equal(emulator.store.get('leads', emulator.store.insert('leads', { lastname: 'Default' }))?._modifiedby_value, appUser)
})
