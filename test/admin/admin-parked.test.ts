import t from 'tap'
import { eventually } from '../helpers/flow-step-harness.ts'
import { startBackgroundSyncHarness, editPersonInMarketo, syncedRecord } from '../helpers/background-sync-harness.ts'
import { parkedChangeId } from '../../src/background-sync/parked-changes.ts'
import type { RunningWorker } from '../../src/build-worker.ts'

/**
 * An operator's parked failures through the admin API (issue 13 §4), over real HTTP to the API
 * `npm start` builds, with the worker `npm run worker` builds (BACKGROUND_SYNC=on), a real Redis and
 * the emulated Marketo and Dataverse: Marketo edits Dynamics refuses (a jobtitle over its 100
 * characters) are listed and filtered, read one by one, retried once the data is fixed in Marketo,
 * and discarded, one or by filter.
 */

const ADMIN_KEY = 'admin-key-of-the-parked-test'
const harness = await startBackgroundSyncHarness(t, { SYNC_MARKETO_POLL_INTERVAL_MS: '200', ADMIN_API_KEY: ADMIN_KEY })
const { sandbox, config } = harness
const worker: RunningWorker = harness.startWorker()

async function admin (method: string, path: string): Promise<{ status: number, body: any }> {
  const response = await fetch(`${sandbox.publicUrl}${path}`, { method, headers: { authorization: `Bearer ${ADMIN_KEY}` } })
  return { status: response.status, body: await response.json() }
}

const editInMarketo = async (personId: number, fields: Record<string, unknown>): Promise<void> => { await editPersonInMarketo(config.marketo.baseUrl, personId, fields) }

async function linkedLead (lastname: string): Promise<{ recordId: string, personId: number, id: string }> {
  const email = `${lastname.toLowerCase()}@example.com`
  const { recordId, personId } = await syncedRecord(harness, 'lead', { lastname, emailaddress1: email, jobtitle: 'Analyst' })
  return { recordId, personId, id: parkedChangeId('marketo-to-dynamics', 'lead', recordId) }
}

const tooLong = `Inventor of the ${'very '.repeat(30)}difference engine` // jobtitle holds 100 characters
const babbage = await linkedLead('Babbage')
const lovelace = await linkedLead('Lovelace')
const hopper = await linkedLead('Hopper')
for (const person of [babbage, lovelace, hopper]) await editInMarketo(person.personId, { title: tooLong })
await eventually(async () => (await admin('GET', '/admin/parked')).body.entries.length === 3 ? true : undefined, { timeoutMs: 10_000, what: 'three parked failures' })
// From here on only the admin API acts on them: a pass would settle an entry on the next fix.
await worker.close()

t.test('listed oldest first, with their reason, and filtered by reason, direction, table and age', async (t) => {
  const { status, body } = await admin('GET', '/admin/parked')
  t.equal(status, 200)
  t.equal(body.more, false)
  t.same(body.entries.map((entry: { recordId: string }) => entry.recordId).sort(), [babbage, lovelace, hopper].map((person) => person.recordId).sort())
  const [entry] = body.entries
  t.match(entry, { direction: 'marketo-to-dynamics', table: 'lead', fields: ['title'], columns: ['jobtitle'], code: /^0x/, status: 400, attempts: 1, activityLogged: true, parkedAt: /^\d{4}-/ })
  t.notMatch(JSON.stringify(body), /very very/, 'never the refused value')
  const code = entry.code as string

  t.equal((await admin('GET', `/admin/parked?code=${code}`)).body.entries.length, 3, 'by its reason')
  t.same((await admin('GET', '/admin/parked?code=0x00000000')).body.entries, [], 'another reason')
  t.equal((await admin('GET', '/admin/parked?direction=marketo-to-dynamics&table=lead')).body.entries.length, 3, 'by direction and table')
  t.same((await admin('GET', '/admin/parked?table=contact')).body.entries, [], 'another table')
  t.same((await admin('GET', '/admin/parked?olderThan=1d')).body.entries, [], 'none a day old')
  t.equal((await admin('GET', '/admin/parked?olderThan=0s')).body.entries.length, 3, 'all older than now')
  const limited = await admin('GET', '/admin/parked?limit=2')
  t.equal(limited.body.entries.length, 2)
  t.equal(limited.body.more, true, 'says more are waiting')

  for (const bad of ['olderThan=2weeks', 'limit=0', 'limit=abc', 'table=account', 'direction=sideways', 'colour=red']) {
    const refused = await admin('GET', `/admin/parked?${bad}`)
    t.equal(refused.status, 400, bad)
    t.match(refused.body, { statusCode: 400, code: /./, message: /./ }, `${bad}: named`)
  }
})

t.test('one read by its id; an id that cannot be one is a 400, an unknown one a 404', async (t) => {
  const { status, body } = await admin('GET', `/admin/parked/${encodeURIComponent(babbage.id)}`)
  t.equal(status, 200)
  t.match(body, { id: babbage.id, personId: babbage.personId, recordId: babbage.recordId })
  t.match(await admin('GET', '/admin/parked/not-an-id'), { status: 400, body: { code: 'PARKED_CHANGE_INVALID_ID' } })
  t.match(await admin('GET', `/admin/parked/${encodeURIComponent(parkedChangeId('marketo-to-dynamics', 'lead', '00000000-0000-4000-8000-000000000000'))}`), { status: 404, body: { code: 'PARKED_CHANGE_NOT_FOUND' } })
})

t.test('retried before the data is fixed: refused again and kept; after the fix in Marketo: written and cleared', async (t) => {
  const path = `/admin/parked/${encodeURIComponent(babbage.id)}`
  const linesBefore = harness.logs().length
  t.match(await admin('POST', `${path}/retry`), { status: 200, body: { id: babbage.id, result: 'refused' } })
  // The retry's own line carries the admin request's id, as the request's access line does (issue 13 §7).
  const lines = await eventually(() => {
    const recent = harness.logs().slice(linesBefore)
    const request = recent.find((line) => line.msg === 'request' && line.route === '/admin/parked/:id/retry')
    const retried = recent.find((line) => line.msg === 'parked change retried' && line.parkedChangeId === babbage.id)
    return request !== undefined && retried !== undefined ? { request, retried } : undefined
  }, { what: 'the retry\'s access line and its own line' })
  t.ok(typeof lines.request.reqId === 'string' && lines.request.reqId !== '', 'the request has an id')
  t.equal(lines.retried.reqId, lines.request.reqId, 'the retry\'s line carries the request\'s reqId')
  t.match((await admin('GET', path)).body, { attempts: 2 })

  await editInMarketo(babbage.personId, { title: 'Inventor of the difference engine' })
  t.match(await admin('POST', `${path}/retry`), { status: 200, body: { id: babbage.id, result: 'written' } })
  t.equal(sandbox.dataverse.store.get('leads', babbage.recordId)?.jobtitle, 'Inventor of the difference engine', 'in Dynamics')
  t.equal((await admin('GET', path)).status, 404, 'the entry is cleared')
  t.match(await admin('POST', `${path}/retry`), { status: 404, body: { code: 'PARKED_CHANGE_NOT_FOUND' } })
})

t.test('discarded one by one', async (t) => {
  const path = `/admin/parked/${encodeURIComponent(lovelace.id)}`
  t.match(await admin('DELETE', path), { status: 200, body: { discarded: [lovelace.id] } })
  t.equal((await admin('GET', path)).status, 404)
  t.match(await admin('DELETE', path), { status: 404, body: { code: 'PARKED_CHANGE_NOT_FOUND' } })
  t.equal(sandbox.dataverse.store.get('leads', lovelace.recordId)?.jobtitle, 'Analyst', 'Dynamics untouched')
})

t.test('by filter: every selected entry retried, then discarded', async (t) => {
  t.same((await admin('POST', '/admin/parked/retry?table=contact')).body, { results: [] }, 'a filter selecting none retries none')
  t.match(await admin('POST', '/admin/parked/retry?table=lead'), { status: 200, body: { results: [{ id: hopper.id, result: 'refused' }] } })
  t.match((await admin('GET', `/admin/parked/${encodeURIComponent(hopper.id)}`)).body, { attempts: 2 })
  t.same((await admin('DELETE', '/admin/parked?table=contact')).body, { discarded: [] })
  t.same((await admin('DELETE', '/admin/parked?direction=marketo-to-dynamics')).body, { discarded: [hopper.id] })
  t.same((await admin('GET', '/admin/parked')).body, { entries: [], more: false })
})

t.test('Dynamics\' message and the person\'s values never reach the log', async (t) => {
  t.notMatch(harness.logText(), /very very|jobtitle.*length|babbage@example\.com/i)
})

t.teardown(async () => { await worker.close() })
