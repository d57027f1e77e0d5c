import t from 'tap'
import { eventually } from '../helpers/flow-step-harness.ts'
import { startBackgroundSyncHarness, editPersonInMarketo, syncedRecord } from '../helpers/background-sync-harness.ts'
import { SANDBOX_USERS } from '../../sandbox/start-sandbox.ts'
import { syncPairMetaKey, syncPairStateKey } from '../../src/queue/redis-keys.ts'
import { PairStateStore } from '../../src/background-sync/pair-state-store.ts'
import type { RunningWorker } from '../../src/build-worker.ts'

/**
 * A forced resync through the admin API (issue 13 §4), which Marketo's native sync cannot do: over
 * real HTTP to the API `npm start` builds, a real Redis and the emulated Marketo and Dataverse. The
 * worker links the pairs, then stops (the sync paused); meanwhile both sides drift — a field changed
 * on both, one filled on one side only — and the pair's last-synced state is lost. A resync merges
 * the pair as new: an empty side is filled from the other, a collision goes to the record type's side.
 */

const ADMIN_KEY = 'admin-key-of-the-resync-test'
const harness = await startBackgroundSyncHarness(t, { SYNC_MARKETO_POLL_INTERVAL_MS: '200', ADMIN_API_KEY: ADMIN_KEY })
const { sandbox, config, redis } = harness
const prefix = config.redis.keyPrefix
const dana = SANDBOX_USERS.dana.systemuserid
const worker: RunningWorker = harness.startWorker()
t.teardown(async () => { await worker.close() })

async function admin (method: string, path: string, body?: unknown): Promise<{ status: number, body: any }> {
  const response = await fetch(`${sandbox.publicUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_KEY}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) })
  })
  return { status: response.status, body: await response.json() }
}

const editInMarketo = async (personId: number, fields: Record<string, unknown>): Promise<void> => { await editPersonInMarketo(config.marketo.baseUrl, personId, fields) }

type Table = 'lead' | 'contact'
const entitySet = (table: Table) => table === 'lead' ? 'leads' : 'contacts'

async function linkedRecord (table: Table, lastname: string): Promise<{ recordId: string, personId: number, email: string }> {
  const email = `${lastname.toLowerCase()}@example.com`
  const { recordId, personId } = await syncedRecord(harness, table, { lastname, emailaddress1: email, jobtitle: 'Analyst' })
  await eventually(async () => await redis.exists(syncPairStateKey(prefix, table, recordId)) === 1 ? true : undefined, { what: `${lastname}'s pair state` })
  return { recordId, personId, email }
}

const babbage = await linkedRecord('lead', 'Babbage')
const franklin = await linkedRecord('contact', 'Franklin')
const lovelace = await linkedRecord('lead', 'Lovelace')
const hopper = await linkedRecord('lead', 'Hopper')
// The sync paused: from here on only the admin API moves anything.
await worker.close()

/** Both sides drift while the sync is paused, and the pair's state is lost. */
async function drift (table: Table, pair: { recordId: string, personId: number }): Promise<void> {
  sandbox.dataverse.store.update(entitySet(table), pair.recordId, { jobtitle: 'Engineer', telephone1: '+44 20 7946 0000', _modifiedby_value: dana })
  await editInMarketo(pair.personId, { title: 'Mathematician', city: 'London' })
  await redis.del(syncPairStateKey(prefix, table, pair.recordId))
}

t.test('a lead whose sides drifted: both equal afterwards, the collision to Marketo', async (t) => {
  await drift('lead', babbage)
  const { status, body } = await admin('POST', '/admin/resync/record', { table: 'lead', id: babbage.recordId })
  t.equal(status, 200)
  t.match(body, { result: 'resynced', marketoId: babbage.personId, record: { table: 'lead', id: babbage.recordId }, toMarketo: 'delivered', toDynamics: 'written' })
  const record = sandbox.dataverse.store.get('leads', babbage.recordId)!
  const person = sandbox.marketo.persons.get(babbage.personId)!
  t.equal(record.jobtitle, 'Mathematician', 'a lead: Marketo wins the collision')
  t.equal(person.title, 'Mathematician')
  t.equal(person.phone, '+44 20 7946 0000', 'set in Dynamics only: filled in Marketo')
  t.equal(record.address1_city, 'London', 'set in Marketo only: filled in Dynamics')
  t.equal(await redis.exists(syncPairStateKey(prefix, 'lead', babbage.recordId)), 1, 'the pair remembered again')

  const explained = await admin('GET', `/admin/explain/record/lead/${babbage.recordId}`)
  t.match(explained.body.lastSync, { 'dynamics-to-marketo': { outcome: 'written' }, 'marketo-to-dynamics': { outcome: 'written' } }, 'explain tells the resync\'s outcome')

  const again = await admin('POST', '/admin/resync/person', { marketoId: babbage.personId })
  t.match(again, { status: 200, body: { result: 'resynced', toMarketo: 'unchanged', toDynamics: 'unchanged' } }, 'by person: nothing left to carry')
})

t.test('a contact whose sides drifted, by the person\'s email: the collision to Dynamics', async (t) => {
  await drift('contact', franklin)
  const { status, body } = await admin('POST', '/admin/resync/person', { email: franklin.email })
  t.equal(status, 200)
  t.match(body, { result: 'resynced', marketoId: franklin.personId, record: { table: 'contact', id: franklin.recordId } })
  const record = sandbox.dataverse.store.get('contacts', franklin.recordId)!
  const person = sandbox.marketo.persons.get(franklin.personId)!
  t.equal(person.title, 'Engineer', 'a contact: Dynamics wins the collision')
  t.equal(record.jobtitle, 'Engineer')
  t.equal(person.phone, '+44 20 7946 0000', 'set in Dynamics only: filled in Marketo')
  t.equal(record.address1_city, 'London', 'set in Marketo only: filled in Dynamics')
})

t.test('a value changed on both while the state is kept: the resync still applies the collision rule', async (t) => {
  sandbox.dataverse.store.update('leads', lovelace.recordId, { jobtitle: 'Programmer', _modifiedby_value: dana })
  await editInMarketo(lovelace.personId, { title: 'Countess' })
  t.match(await admin('POST', '/admin/resync/record', { table: 'lead', id: lovelace.recordId.toUpperCase() }), { status: 200, body: { result: 'resynced' } })
  t.equal(sandbox.dataverse.store.get('leads', lovelace.recordId)?.jobtitle, 'Countess')
  t.equal(sandbox.marketo.persons.get(lovelace.personId)?.title, 'Countess')
})

t.test('an unlinked person: what was found, and that the flow step creates records', async (t) => {
  const personId = sandbox.marketo.persons.create({ email: 'unlinked@example.com', lastName: 'Unlinked' })
  const { status, body } = await admin('POST', '/admin/resync/person', { email: 'unlinked@example.com' })
  t.equal(status, 200)
  t.match(body, { result: 'unlinked', marketoId: personId, record: null })
  t.match(body.notes.join(' '), /flow step/)
  t.equal(sandbox.dataverse.store.list('leads').some((lead) => lead.emailaddress1 === 'unlinked@example.com'), false, 'no record created')
})

t.test('a bad id is a 400, an unknown person or record a 404', async (t) => {
  for (const [path, body] of [
    ['/admin/resync/record', { table: 'lead', id: 'not-a-guid' }],
    ['/admin/resync/record', { table: 'account', id: babbage.recordId }],
    ['/admin/resync/person', { marketoId: 'abc' }],
    ['/admin/resync/person', { marketoId: 1, email: 'both@example.com' }],
    ['/admin/resync/person', {}]
  ] as const) {
    const refused = await admin('POST', path, body)
    t.equal(refused.status, 400, JSON.stringify(body))
    t.match(refused.body, { statusCode: 400, message: /./ })
  }
  t.match(await admin('POST', '/admin/resync/person', { marketoId: 999999 }), { status: 404, body: { code: 'PERSON_NOT_FOUND' } })
  t.match(await admin('POST', '/admin/resync/person', { email: 'nobody@example.com' }), { status: 404, body: { code: 'PERSON_NOT_FOUND' } })
  t.match(await admin('POST', '/admin/resync/record', { table: 'contact', id: '00000000-0000-4000-8000-000000000000' }), { status: 404, body: { code: 'RECORD_NOT_FOUND' } })
})

t.test('the pair\'s sync record is dropped with its state; no email or value in the log', async (t) => {
  t.equal(await redis.exists(syncPairMetaKey(prefix, 'lead', babbage.recordId)), 1)
  await new PairStateStore(redis, prefix).forget('lead', [babbage.recordId])
  t.equal(await redis.exists(syncPairStateKey(prefix, 'lead', babbage.recordId), syncPairMetaKey(prefix, 'lead', babbage.recordId)), 0, 'both gone')
  t.notMatch(harness.logText(), /@example\.com|Mathematician|Engineer|Countess|Programmer|London|20 7946 0000/i, 'no email, field value or phone number (the whole number: a timestamp may hold its digits)')
})

t.test('a paused direction is not written by a resync either: that side answers paused, with a note', async (t) => {
  t.match(await admin('POST', '/admin/sync/marketo-to-dynamics/pause'), { status: 200 })
  t.teardown(async () => { await admin('POST', '/admin/sync/marketo-to-dynamics/resume') })
  sandbox.dataverse.store.update('leads', hopper.recordId, { telephone1: '+1 202 555 0100', _modifiedby_value: dana })
  await editInMarketo(hopper.personId, { title: 'Rear Admiral' })

  const { status, body } = await admin('POST', '/admin/resync/record', { table: 'lead', id: hopper.recordId })
  t.equal(status, 200)
  t.match(body, { result: 'resynced', toMarketo: 'delivered', toDynamics: 'paused', notes: [/Marketo → Dynamics direction is paused/] })
  t.equal(sandbox.dataverse.store.get('leads', hopper.recordId)?.jobtitle, 'Analyst', 'nothing written to Dynamics')
  t.equal(sandbox.marketo.persons.get(hopper.personId)?.phone, '+1 202 555 0100', 'the direction not paused still carried its change')
})
