import t from 'tap'
import { eventually } from '../helpers/flow-step-harness.ts'
import { startBackgroundSyncHarness, editPersonInMarketo, syncedRecord } from '../helpers/background-sync-harness.ts'
import { SANDBOX_USERS } from '../../sandbox/start-sandbox.ts'
import { recordLinkKey, syncPairMetaKey } from '../../src/queue/redis-keys.ts'
import type { RunningWorker } from '../../src/build-worker.ts'

/**
 * "Why didn't it sync?" through the admin API (issue 13 §4), over real HTTP to the API `npm start`
 * builds, with the worker `npm run worker` builds (BACKGROUND_SYNC=on), a real Redis and the
 * emulated Marketo and Dataverse (whose lead table has the sync filter new_synctomkto). Dana edits
 * in Dynamics, a marketer in Marketo; the operator asks.
 */

const ADMIN_KEY = 'admin-key-of-the-explain-test'
const harness = await startBackgroundSyncHarness(t, { SYNC_MARKETO_POLL_INTERVAL_MS: '200', ADMIN_API_KEY: ADMIN_KEY })
const { sandbox, config, redis } = harness
const prefix = config.redis.keyPrefix
const dana = SANDBOX_USERS.dana.systemuserid
const worker: RunningWorker = harness.startWorker()
t.teardown(async () => { await worker.close() })

async function admin (method: string, path: string): Promise<{ status: number, body: any }> {
  const response = await fetch(`${sandbox.publicUrl}${path}`, { method, headers: { authorization: `Bearer ${ADMIN_KEY}` } })
  return { status: response.status, body: await response.json() }
}

const editInMarketo = async (personId: number, fields: Record<string, unknown>): Promise<void> => { await editPersonInMarketo(config.marketo.baseUrl, personId, fields) }

async function linkedLead (lastname: string): Promise<{ recordId: string, personId: number, email: string }> {
  const email = `${lastname.toLowerCase()}@example.com`
  const { recordId, personId } = await syncedRecord(harness, 'lead', { lastname, emailaddress1: email, jobtitle: 'Analyst' })
  return { recordId, personId, email }
}

t.test('a synced lead: its link, both last syncs, who owns which field, the filter', async (t) => {
  const turing = await linkedLead('Turing')
  await editInMarketo(turing.personId, { title: 'Codebreaker' })
  await eventually(() => sandbox.dataverse.store.get('leads', turing.recordId)?.jobtitle === 'Codebreaker' ? true : undefined, { timeoutMs: 10_000, what: 'the title in Dynamics' })
  const explained = await eventually(async () => {
    const answer = await admin('GET', `/admin/explain/person/${turing.personId}`)
    return answer.body.lastSync?.['marketo-to-dynamics'] !== null ? answer : undefined
  }, { timeoutMs: 5_000, what: 'the Marketo → Dynamics sync recorded' })
  t.equal(explained.status, 200)
  const body = explained.body
  t.match(body, {
    person: { marketoId: turing.personId, inMarketo: true, sameEmailPersonIds: [] },
    record: { table: 'lead', id: turing.recordId, inDynamics: true },
    linked: true,
    collisionWinner: 'marketo',
    syncFilter: { column: 'new_synctomkto', present: true, value: null, decision: 'sync' },
    parked: []
  })
  t.match(body.lastSync['dynamics-to-marketo'], { outcome: 'written', at: /^\d{4}-/, syncedAt: /^\d{4}-/ }, 'the lead reached Marketo')
  t.match(body.lastSync['marketo-to-dynamics'], { outcome: 'written', at: /^\d{4}-/, syncedAt: /^\d{4}-/ }, 'the title reached Dynamics')
  const field = (name: string) => body.fields.find((entry: { marketoField: string }) => entry.marketoField === name)
  t.match(field('title'), { column: 'jobtitle', direction: 'both', owner: 'marketo' }, 'a two-way field: Marketo wins on a lead')
  t.ok(body.fields.some((entry: { direction: string, owner: string }) => entry.direction === 'toMarketo' && entry.owner === 'dynamics'), 'a field Dynamics alone writes is Dynamics\'')

  const byEmail = await admin('GET', `/admin/explain/person/${encodeURIComponent(turing.email)}`)
  t.equal(byEmail.status, 200)
  t.same(byEmail.body.record, body.record, 'by email: the same pair')
  // The email in the body, never in a URL a proxy logs.
  for (const person of [{ email: turing.email }, { marketoId: turing.personId }]) {
    const posted = await fetch(`${sandbox.publicUrl}/admin/explain/person`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' }, body: JSON.stringify(person) })
    t.equal(posted.status, 200)
    t.same(((await posted.json()) as { record: unknown }).record, body.record, `POSTed ${Object.keys(person)[0]}: the same pair`)
  }
  const neither = await fetch(`${sandbox.publicUrl}/admin/explain/person`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'Alan' }) })
  t.equal(neither.status, 400, 'neither an email nor a Marketo id: 400')
  const byRecord = await admin('GET', `/admin/explain/record/lead/${turing.recordId.toUpperCase()}`)
  t.equal(byRecord.status, 200)
  t.same(byRecord.body.person, body.person, 'by record: the same pair')
})

t.test('a contact: Dynamics wins collisions', async (t) => {
  const recordId = sandbox.dataverse.store.insert('contacts', { lastname: 'Franklin', emailaddress1: 'franklin@example.com', _modifiedby_value: dana })
  await eventually(async () => await redis.get(recordLinkKey(prefix, 'contact', recordId)) ?? undefined, { timeoutMs: 5_000, what: 'the contact\'s link' })
  const { status, body } = await admin('GET', `/admin/explain/record/contact/${recordId}`)
  t.equal(status, 200)
  t.equal(body.collisionWinner, 'dynamics')
  t.ok(body.fields.filter((entry: { direction: string }) => entry.direction === 'both').every((entry: { owner: string }) => entry.owner === 'dynamics'))
})

t.test('a record filtered No: the filter read live, and the pair\'s last outcome', async (t) => {
  const unsent = sandbox.dataverse.store.insert('leads', { lastname: 'Vaughan', emailaddress1: 'vaughan@example.com', new_synctomkto: false, _modifiedby_value: dana })
  const never = await admin('GET', `/admin/explain/record/lead/${unsent}`)
  t.equal(never.status, 200)
  t.match(never.body, { person: null, linked: false, syncFilter: { present: true, value: false, decision: 'skip' } })
  t.match(never.body.notes.join(' '), /new_synctomkto is No/)

  const noether = await linkedLead('Noether')
  sandbox.dataverse.store.update('leads', noether.recordId, { new_synctomkto: false, jobtitle: 'Algebraist', _modifiedby_value: dana })
  const { body } = await eventually(async () => {
    const answer = await admin('GET', `/admin/explain/record/lead/${noether.recordId}`)
    return answer.body.lastSync['dynamics-to-marketo']?.outcome === 'filtered' ? answer : undefined
  }, { timeoutMs: 5_000, what: 'the filtered change recorded' })
  t.match(body, { linked: true, syncFilter: { value: false, decision: 'skip' } })
  t.not(sandbox.marketo.persons.get(noether.personId)?.title, 'Algebraist', 'Marketo untouched')
})

t.test('a parked one: the code shown, the message left in the activity log', async (t) => {
  const hopper = await linkedLead('Hopper')
  await editInMarketo(hopper.personId, { title: `Inventor of the ${'very '.repeat(30)}first compiler` })
  const { body } = await eventually(async () => {
    const answer = await admin('GET', `/admin/explain/person/${hopper.personId}`)
    return answer.body.parked?.length === 1 ? answer : undefined
  }, { timeoutMs: 10_000, what: 'the parked failure' })
  t.match(body.parked[0], { direction: 'marketo-to-dynamics', fields: ['title'], code: /^0x/, personId: hopper.personId })
  t.match(body.lastSync['marketo-to-dynamics'], { outcome: 'refused', code: body.parked[0].code })
  t.match(body.notes.join(' '), /activity log/)
  t.notMatch(JSON.stringify(body), /very very/, 'never the refused value')
})

t.test('an unlinked person, a bad id, an unknown one', async (t) => {
  const personId = sandbox.marketo.persons.create({ email: 'lonely@example.com', lastName: 'Lonely' })
  const { status, body } = await admin('GET', `/admin/explain/person/${personId}`)
  t.equal(status, 200)
  t.match(body, { linked: false, record: null, person: { marketoId: personId } })
  t.match(body.notes.join(' '), /flow step/)
  for (const bad of ['/admin/explain/person/not-a-person', '/admin/explain/record/lead/not-a-guid', '/admin/explain/record/account/3f2a1c9e-5b7d-4e21-9c3a-0d8e6f4b2a17']) {
    const refused = await admin('GET', bad)
    t.equal(refused.status, 400, bad)
    t.match(refused.body, { statusCode: 400, message: /./ })
  }
  t.match(await admin('GET', '/admin/explain/person/999999'), { status: 404, body: { code: 'PERSON_NOT_FOUND' } })
  t.match(await admin('GET', '/admin/explain/person/nobody%40example.com'), { status: 404, body: { code: 'PERSON_NOT_FOUND' } })
  t.match(await admin('GET', '/admin/explain/record/lead/00000000-0000-4000-8000-000000000000'), { status: 404, body: { code: 'RECORD_NOT_FOUND' } })
  t.equal((await fetch(`${sandbox.publicUrl}/admin/explain/person/1`)).status, 401, 'behind the admin key')
})

t.test('the sync record holds times and codes only, and no email or value reaches the log', async (t) => {
  for (const key of await redis.keys(syncPairMetaKey(prefix, '*', '*'))) {
    const hash = await redis.hgetall(key)
    t.ok(Object.values(hash).every((value) => /^(\d+|written|unchanged|filtered|refused|0x[0-9a-f]+)$/i.test(value)), `${key}: ${JSON.stringify(hash)}`)
  }
  t.notMatch(harness.logText(), /@example\.com|Codebreaker|Algebraist|very very/i)
})
