import { randomUUID } from 'node:crypto'
import t from 'tap'
import type { DataverseEmulator } from '../../sandbox/dataverse/index.ts'
import { sendToWebApi, startedDataverseEmulator, type WebApiReply } from '../helpers/dataverse-emulator.ts'

/**
 * The Dataverse emulator's `UpdateMultiple` bulk message (reference doc §4, learn.microsoft.com "Use
 * bulk operation messages") over real HTTP with plain fetch: the documented request and 204, one
 * transaction on a standard table (one bad target leaves every row as it was), no cap on the count,
 * authorship and change tracking as for single writes.
 */


type Reply = WebApiReply

const started = startedDataverseEmulator

const send = sendToWebApi

function updateMultiple (emulator: DataverseEmulator, entitySet: string, targets: unknown[], headers: Record<string, string> = {}): Promise<Reply> {
  return send(`${emulator.url}/api/data/v9.2/${entitySet}/Microsoft.Dynamics.CRM.UpdateMultiple`, 'POST', { body: { Targets: targets }, headers })
}

const lead = (leadid: string, columns: Record<string, unknown>) => ({ '@odata.type': 'Microsoft.Dynamics.CRM.lead', leadid, ...columns })

t.test('UpdateMultiple writes every target and answers 204 with no body', async (t) => {
  const emulator = await started(t)
  const ann = emulator.store.insert('leads', { firstname: 'Ann', lastname: 'One', jobtitle: 'Clerk' })
  const bob = emulator.store.insert('leads', { firstname: 'Bob', lastname: 'Two' })
  const reply = await updateMultiple(emulator, 'leads', [lead(ann, { jobtitle: 'CFO' }), lead(bob, { jobtitle: 'CTO', lastname: 'Deux' })])
  t.equal(reply.status, 204)
  t.equal(reply.body, '')
  t.equal(reply.headers.get('odata-version'), '4.0')
  t.match(emulator.store.get('leads', ann), { jobtitle: 'CFO', firstname: 'Ann', lastname: 'One' }, 'only the columns sent change')
  t.match(emulator.store.get('leads', bob), { jobtitle: 'CTO', lastname: 'Deux', fullname: 'Bob Deux' })
})

t.test('contacts take UpdateMultiple too; a table without it is not found', async (t) => {
  const emulator = await started(t)
  const cy = emulator.store.insert('contacts', { lastname: 'Contact' })
  const reply = await updateMultiple(emulator, 'contacts', [{ '@odata.type': 'Microsoft.Dynamics.CRM.contact', contactid: cy, jobtitle: 'Buyer' }])
  t.equal(reply.status, 204)
  t.equal(emulator.store.get('contacts', cy)?.jobtitle, 'Buyer')

  const account = emulator.store.insert('accounts', { name: 'Acme' })
  const refused = await updateMultiple(emulator, 'accounts', [{ '@odata.type': 'Microsoft.Dynamics.CRM.account', accountid: account, name: 'Other' }])
  t.equal(refused.status, 404)
  t.equal(emulator.store.get('accounts', account)?.name, 'Acme')
})

t.test('one target too long fails the whole request with Dataverse\'s error and writes nothing', async (t) => {
  const emulator = await started(t)
  const good = emulator.store.insert('leads', { lastname: 'Good', jobtitle: 'Before' })
  const bad = emulator.store.insert('leads', { lastname: 'Bad' })
  const versionBefore = emulator.store.get('leads', good)?.versionnumber
  const reply = await updateMultiple(emulator, 'leads', [lead(good, { jobtitle: 'After' }), lead(bad, { lastname: 'L'.repeat(51) })])
  t.equal(reply.status, 400)
  t.same(reply.body, { error: { code: '0x80044331', message: "A validation error occurred. The length of the 'lastname' attribute of the 'lead' entity exceeded the maximum allowed length of '50'." } })
  t.equal(emulator.store.get('leads', good)?.jobtitle, 'Before', 'the valid target before it is rolled back too')
  t.equal(emulator.store.get('leads', good)?.versionnumber, versionBefore)
})

t.test('a configured required column emptied by one target fails the whole request', async (t) => {
  const emulator = await started(t, { requiredFields: { leads: ['lastname'] } })
  const one = emulator.store.insert('leads', { lastname: 'One' })
  const two = emulator.store.insert('leads', { lastname: 'Two' })
  const reply = await updateMultiple(emulator, 'leads', [lead(one, { lastname: 'Uno' }), lead(two, { lastname: '' })])
  t.equal(reply.status, 400)
  t.equal(reply.body.error.code, '0x80040203')
  t.equal(emulator.store.get('leads', one)?.lastname, 'One')
})

t.test('targets naming rows that do not exist: 404 listing their ids, nothing written', async (t) => {
  const emulator = await started(t)
  const kept = emulator.store.insert('leads', { lastname: 'Kept' })
  const gone = randomUUID()
  const alsoGone = randomUUID()
  const reply = await updateMultiple(emulator, 'leads', [lead(kept, { jobtitle: 'X' }), lead(gone, { jobtitle: 'Y' }), lead(alsoGone, { jobtitle: 'Z' })])
  t.equal(reply.status, 404)
  t.same(reply.body, { error: { code: '0x80040217', message: `Lead With Ids = ${gone}, ${alsoGone} Do Not Exist` } })
  t.equal(emulator.store.get('leads', kept)?.jobtitle, null)
})

t.test('@odata.type is mandatory on every item and must name the table; so is the primary key', async (t) => {
  const emulator = await started(t)
  const id = emulator.store.insert('leads', { lastname: 'Typed' })
  const untyped = await updateMultiple(emulator, 'leads', [lead(id, { jobtitle: 'A' }), { leadid: id, jobtitle: 'B' }])
  t.equal(untyped.status, 400)
  t.equal(untyped.body.error.code, '0x80048d19')
  t.match(untyped.body.error.message, /@odata\.type/)
  const wrongType = await updateMultiple(emulator, 'leads', [{ '@odata.type': 'Microsoft.Dynamics.CRM.contact', leadid: id, jobtitle: 'C' }])
  t.equal(wrongType.status, 400)
  t.match(wrongType.body.error.message, /Microsoft\.Dynamics\.CRM\.lead/)
  const keyless = await updateMultiple(emulator, 'leads', [{ '@odata.type': 'Microsoft.Dynamics.CRM.lead', jobtitle: 'D' }])
  t.equal(keyless.status, 400)
  t.equal(keyless.body.error.message, 'Entity Id must be specified for Update')
  const noTargets = await send(`${emulator.url}/api/data/v9.2/leads/Microsoft.Dynamics.CRM.UpdateMultiple`, 'POST', { body: { targets: [] } })
  t.equal(noTargets.status, 400)
  t.equal(emulator.store.get('leads', id)?.jobtitle, null, 'none of them wrote')
})

t.test('no cap on the count: 2,000 targets (twice $batch\'s limit) go in one request', async (t) => {
  const emulator = await started(t)
  const ids = Array.from({ length: 2_000 }, (_, n) => emulator.store.insert('leads', { lastname: `Row ${n}` }))
  const reply = await updateMultiple(emulator, 'leads', ids.map((id, n) => lead(id, { jobtitle: `Title ${n}` })))
  t.equal(reply.status, 204)
  t.equal(emulator.store.get('leads', ids[1_999] as string)?.jobtitle, 'Title 1999')
})

t.test('writes are authored by the caller (app user, or MSCRMCallerID) and show in change tracking', async (t) => {
  const emulator = await started(t)
  const person = emulator.store.insert('systemusers', { firstname: 'Sal', lastname: 'Person' })
  const a = emulator.store.insert('leads', { lastname: 'A', modifiedon: '2020-01-01T00:00:00Z' })
  const b = emulator.store.insert('leads', { lastname: 'B' })
  const untouched = emulator.store.insert('leads', { lastname: 'Untouched' })
  const initial = await send(`${emulator.url}/api/data/v9.2/leads?$select=jobtitle,_modifiedby_value`, 'GET', { headers: { Prefer: 'odata.track-changes' } })
  const deltaLink: string = initial.body['@odata.deltaLink']

  t.equal((await updateMultiple(emulator, 'leads', [lead(a, { jobtitle: 'By app' })])).status, 204)
  t.equal((await updateMultiple(emulator, 'leads', [lead(b, { jobtitle: 'By person' })], { MSCRMCallerID: person })).status, 204)
  t.equal(emulator.store.get('leads', a)?._modifiedby_value, emulator.store.defaultUserId)
  t.not(emulator.store.get('leads', a)?.modifiedon, '2020-01-01T00:00:00Z', 'modifiedon moves')
  t.equal(emulator.store.get('leads', b)?._modifiedby_value, person)

  const delta = await send(deltaLink, 'GET')
  t.same(delta.body.value.map((row: any) => [row.leadid, row.jobtitle, row._modifiedby_value]), [
    [a, 'By app', emulator.store.defaultUserId],
    [b, 'By person', person]
  ], 'both updated rows, in write order, and not the untouched one')
  t.notOk(delta.body.value.some((row: any) => row.leadid === untouched))
})

t.test('service protection applies: a 429 fault answers the bulk request, which writes nothing', async (t) => {
  const emulator = await started(t)
  const id = emulator.store.insert('leads', { lastname: 'Throttled' })
  emulator.faults.throttleNext(1, 3)
  const reply = await updateMultiple(emulator, 'leads', [lead(id, { jobtitle: 'Later' })])
  t.equal(reply.status, 429)
  t.equal(reply.headers.get('retry-after'), '3')
  t.equal(emulator.store.get('leads', id)?.jobtitle, null)
})
