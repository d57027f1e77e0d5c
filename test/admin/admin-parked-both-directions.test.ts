import t from 'tap'
import { eventually } from '../helpers/flow-step-harness.ts'
import { startBackgroundSyncHarness, editPersonInMarketo, syncedRecord } from '../helpers/background-sync-harness.ts'
import { SANDBOX_USERS } from '../../sandbox/start-sandbox.ts'
import { parkedChangeId, type ParkedDirection } from '../../src/background-sync/parked-changes.ts'
import { STATE_STATUS_MISMATCH } from '../../src/sync/state-status.ts'
import type { RunningWorker } from '../../src/build-worker.ts'

/**
 * The admin API retries parked failures of both directions (issue 13 §4), over real HTTP to the API
 * `npm start` builds, with the worker `npm run worker` builds (BACKGROUND_SYNC=on) to park them, a
 * real Redis and the emulated Marketo and Dataverse. A Dynamics → Marketo record Marketo refuses
 * (the emulated Marketo skips an email that is not ASCII with 1003) is retried from Dataverse once
 * fixed there; a Marketo Person Status Dynamics refused beside an impossible Status Reason is
 * retried once the marketer fixed the reason, and goes as a pair Dataverse accepts; one bulk retry
 * takes entries of both directions, oldest first, at most the limit together.
 */

const ADMIN_KEY = 'admin-key-of-the-both-directions-test'
const harness = await startBackgroundSyncHarness(t, { SYNC_MARKETO_POLL_INTERVAL_MS: '200', ADMIN_API_KEY: ADMIN_KEY })
const { sandbox, config } = harness
const dana = SANDBOX_USERS.dana.systemuserid
const worker: RunningWorker = harness.startWorker()

async function admin (method: string, path: string): Promise<{ status: number, body: any }> {
  const response = await fetch(`${sandbox.publicUrl}${path}`, { method, headers: { authorization: `Bearer ${ADMIN_KEY}` } })
  return { status: response.status, body: await response.json() }
}

const editInMarketo = async (personId: number, fields: Record<string, unknown>): Promise<void> => { await editPersonInMarketo(config.marketo.baseUrl, personId, fields) }

function editInDynamics (recordId: string, fields: Record<string, unknown>): void {
  sandbox.dataverse.store.update('leads', recordId, { ...fields, _modifiedby_value: dana })
}

interface ParkedLead { recordId: string, personId: number, id: string }

async function linkedLead (lastname: string, direction: ParkedDirection): Promise<ParkedLead> {
  const email = `${lastname.toLowerCase()}@example.com`
  // The lead's status reaches the person with the rest: the pair's state is saved.
  const { recordId, personId } = await syncedRecord(harness, 'lead', { lastname, emailaddress1: email, jobtitle: 'Analyst' }, (person) => person.microsoftStatusReason === 'New')
  return { recordId, personId, id: parkedChangeId(direction, 'lead', recordId) }
}

async function parked (lead: ParkedLead): Promise<any> {
  return await eventually(async () => {
    const { status, body } = await admin('GET', `/admin/parked/${encodeURIComponent(lead.id)}`)
    return status === 200 ? body : undefined
  }, { timeoutMs: 10_000, what: `the parked ${lead.id}` })
}

const pairOf = (recordId: string): unknown[] => {
  const row = sandbox.dataverse.store.get('leads', recordId)
  return [row?.statecode, row?.statuscode]
}

const tooLong = `Inventor of the ${'very '.repeat(30)}difference engine` // jobtitle holds 100 characters

// Parked one after the other, so their order (oldest first) is known: Dynamics → Marketo, then
// Marketo → Dynamics, then one more of each.
const ada = await linkedLead('Lovelace', 'dynamics-to-marketo')
editInDynamics(ada.recordId, { emailaddress1: 'ada.lövelace@example.com' })
await parked(ada)
const grace = await linkedLead('Hopper', 'marketo-to-dynamics')
await editInMarketo(grace.personId, { leadStatus: 'Qualified', microsoftStatusReason: 'Lost' })
await parked(grace)
const mary = await linkedLead('Somerville', 'dynamics-to-marketo')
editInDynamics(mary.recordId, { emailaddress1: 'märy.somerville@example.com' })
await parked(mary)
const babbage = await linkedLead('Babbage', 'marketo-to-dynamics')
await editInMarketo(babbage.personId, { title: tooLong })
await parked(babbage)
// From here on only the admin API acts on them: a pass would deliver a fix itself.
await worker.close()

t.test('both directions listed, each with its own reason', async (t) => {
  const { body } = await admin('GET', '/admin/parked')
  t.same(body.entries.map((entry: { id: string }) => entry.id), [ada.id, grace.id, mary.id, babbage.id], 'oldest first')
  t.match(body.entries[0], { direction: 'dynamics-to-marketo', personIds: [ada.personId], code: '1003', attempts: 1 })
  t.match(body.entries[1], { direction: 'marketo-to-dynamics', personId: grace.personId, code: STATE_STATUS_MISMATCH, attempts: 1 })
  t.same(pairOf(grace.recordId), [0, 1], 'the lead kept its pair')
})

t.test('a Dynamics → Marketo record: retried before the fix, refused again and kept; after the fix in Dynamics, delivered and cleared', async (t) => {
  const path = `/admin/parked/${encodeURIComponent(ada.id)}`
  t.match(await admin('POST', `${path}/retry`), { status: 200, body: { id: ada.id, result: 'refused' } })
  t.match((await admin('GET', path)).body, { code: '1003', attempts: 2 })
  t.equal(sandbox.marketo.persons.get(ada.personId)?.email, 'lovelace@example.com', 'the person left as it was')

  editInDynamics(ada.recordId, { emailaddress1: 'ada.byron@example.com', jobtitle: 'Countess' })
  t.match(await admin('POST', `${path}/retry`), { status: 200, body: { id: ada.id, result: 'delivered' } })
  t.match(sandbox.marketo.persons.get(ada.personId), { email: 'ada.byron@example.com', title: 'Countess' }, 'the record as Dynamics holds it now, in Marketo')
  t.equal((await admin('GET', path)).status, 404, 'the entry is cleared')
  t.match(await admin('POST', `${path}/retry`), { status: 404, body: { code: 'PARKED_CHANGE_NOT_FOUND' } })
})

t.test('a Marketo Person Status retried once the marketer dropped the impossible Status Reason: written with its state\'s default status, a pair Dataverse accepts', async (t) => {
  // Qualified stays; the reason goes back to what Dynamics holds (New, a status of Open): the
  // retry writes the state alone, which Dataverse refuses (0x80048408) unless it brings a status of Qualified.
  await editInMarketo(grace.personId, { microsoftStatusReason: 'New' })
  const path = `/admin/parked/${encodeURIComponent(grace.id)}`
  t.match(await admin('POST', `${path}/retry`), { status: 200, body: { id: grace.id, result: 'written' } })
  t.same(pairOf(grace.recordId), [1, 3], 'Qualified, with its default status Qualified')
  t.equal((await admin('GET', path)).status, 404, 'the entry is cleared')
})

t.test('a bulk retry takes both directions, oldest first, at most the limit together', async (t) => {
  t.same((await admin('POST', '/admin/parked/retry?limit=1')).body, { results: [{ id: mary.id, result: 'refused' }] }, 'the oldest only, a Dynamics → Marketo one')
  t.match((await admin('GET', `/admin/parked/${encodeURIComponent(mary.id)}`)).body, { attempts: 2 })
  t.match((await admin('GET', `/admin/parked/${encodeURIComponent(babbage.id)}`)).body, { attempts: 1 }, 'the next one not retried')

  editInDynamics(mary.recordId, { emailaddress1: 'mary.somerville@example.com' })
  t.same((await admin('POST', '/admin/parked/retry')).body, {
    results: [{ id: mary.id, result: 'delivered' }, { id: babbage.id, result: 'refused' }]
  }, 'each by its own retry: the fixed record delivered, the value still too long refused again')
  t.equal(sandbox.marketo.persons.get(mary.personId)?.email, 'mary.somerville@example.com')
  t.same((await admin('GET', '/admin/parked')).body.entries.map((entry: { id: string, attempts: number }) => [entry.id, entry.attempts]), [[babbage.id, 2]])
  t.same((await admin('POST', '/admin/parked/retry?direction=dynamics-to-marketo')).body, { results: [] }, 'a direction with nothing parked retries nothing')
})

t.test('no person\'s values in the answers\' entries or the log', async (t) => {
  t.notMatch(JSON.stringify((await admin('GET', '/admin/parked')).body), /example\.com|very very/)
  t.notMatch(harness.logText(), /very very|lövelace|märy|somerville@example\.com|byron/i)
})

t.teardown(async () => { await worker.close() })
