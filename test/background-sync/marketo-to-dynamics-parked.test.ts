import t from 'tap'
import pino from 'pino'
import { eventually } from '../helpers/flow-step-harness.ts'
import { startBackgroundSyncHarness, editPersonInMarketo } from '../helpers/background-sync-harness.ts'
import { SANDBOX_USERS } from '../../sandbox/start-sandbox.ts'
import { CheckpointStore } from '../../src/background-sync/checkpoints.ts'
import { MARKETO_CHECKPOINT } from '../../src/background-sync/marketo-change-pass.ts'
import { retryParkedChange, type ParkedChangeRetryDeps } from '../../src/background-sync/parked-change-retry.ts'
import { ParkedChangeStore, parkedChangeId } from '../../src/background-sync/parked-changes.ts'
import { parkedChangeRetryDeps } from '../../src/background-sync/parked-change-retry-deps.ts'
import { SYNC_FAILURE_ACTIVITY_TYPE } from '../../src/marketo/sync-failure-activity.ts'
import { recordLinkKey } from '../../src/queue/redis-keys.ts'
import { createDataverseClient, createMarketoRestClient } from '../../src/runtime/service-clients.ts'
import type { RunningWorker } from '../../src/build-worker.ts'

/**
 * A Marketo edit Dynamics refuses (issue 12 §9), through the worker `npm run worker` builds with
 * BACKGROUND_SYNC=on, on a real Redis, against the emulated Marketo and Dataverse: the failure is in
 * the person's Marketo activity log with Dynamics' message, the change is parked with its reason,
 * the rest of the page is written, the checkpoint moves on; once the value is fixed in Marketo, a
 * retry writes it and clears the entry. The Dataverse emulator refuses a jobtitle over 100
 * characters, as Dataverse does (its max length).
 */

const harness = await startBackgroundSyncHarness(t, { SYNC_MARKETO_POLL_INTERVAL_MS: '200' })
const { sandbox, config, redis } = harness
const prefix = config.redis.keyPrefix
const dana = SANDBOX_USERS.dana.systemuserid
const checkpoints = new CheckpointStore(redis, prefix)
const parked = new ParkedChangeStore(redis, prefix)

let worker: RunningWorker = harness.startWorker()

const editInMarketo = async (personId: number, fields: Record<string, unknown>): Promise<void> => { await editPersonInMarketo(config.marketo.baseUrl, personId, fields) }

async function linkedLead (fields: Record<string, unknown>): Promise<{ recordId: string, personId: number }> {
  const recordId = sandbox.dataverse.store.insert('leads', { ...fields, _modifiedby_value: dana })
  const personId = Number(await eventually(async () => await redis.get(recordLinkKey(prefix, 'lead', recordId)) ?? undefined, { timeoutMs: 5_000, what: 'the lead\'s link' }))
  await eventually(() => sandbox.marketo.persons.get(personId)?.email === fields.emailaddress1 ? true : undefined, { what: 'the person' })
  return { recordId, personId }
}

async function twoMarketoPassesLater (): Promise<void> {
  const { version } = await checkpoints.load(MARKETO_CHECKPOINT)
  await eventually(async () => (await checkpoints.load(MARKETO_CHECKPOINT)).version >= version + 2 ? true : undefined, { timeoutMs: 5_000, what: 'two more Marketo passes' })
}

/** The person's "Microsoft Sync Failed" activities, as Marketo's activity log shows them (real HTTP). */
async function syncFailures (personId: number): Promise<Array<{ primaryAttributeValue: string, attributes: Array<{ name: string, value: unknown }> }>> {
  const type = sandbox.marketo.customActivityTypes.byApiName(SYNC_FAILURE_ACTIVITY_TYPE.apiName)
  if (type === undefined) return []
  const response = await fetch(`${config.marketo.baseUrl}/_emulator/persons/${personId}/activities`)
  const { activities } = await response.json() as { activities: Array<{ activityTypeId: number, primaryAttributeValue: string, attributes: Array<{ name: string, value: unknown }> }> }
  return activities.filter((activity) => activity.activityTypeId === type.id)
}

async function whileTheSyncIsAway (edits: () => Promise<void>): Promise<void> {
  await worker.close()
  await edits()
  worker = harness.startWorker()
}

/** What the admin API hands the retry: the service's own clients and stores, built by the shared builder. */
async function retryDeps (): Promise<ParkedChangeRetryDeps> {
  const logger = pino({ level: 'silent' })
  return await parkedChangeRetryDeps({ config, logger, redis, dataverse: createDataverseClient(config, logger), marketo: createMarketoRestClient(config) }).marketoToDynamics()
}

const tooLong = `Inventor of the ${'very '.repeat(30)}difference engine` // jobtitle holds 100 characters
let babbage = { recordId: '', personId: 0 }

t.test('a value Dynamics refuses: in the person\'s activity log with Dynamics\' message, parked with its reason; the rest of the page written, the checkpoint advanced', async (t) => {
  await eventually(async () => (await checkpoints.load(MARKETO_CHECKPOINT)).cursor, { timeoutMs: 5_000, what: 'the Marketo checkpoint' })
  babbage = await linkedLead({ lastname: 'Babbage', emailaddress1: 'charles.babbage@example.com', jobtitle: 'Mathematician' })
  const somerville = await linkedLead({ lastname: 'Somerville', emailaddress1: 'mary.somerville@example.com', jobtitle: 'Astronomer' })
  await whileTheSyncIsAway(async () => {
    await editInMarketo(babbage.personId, { title: tooLong })
    await editInMarketo(somerville.personId, { title: 'Polymath' })
  })
  const before = await checkpoints.load(MARKETO_CHECKPOINT)

  await eventually(() => sandbox.dataverse.store.get('leads', somerville.recordId)?.jobtitle === 'Polymath' ? true : undefined, { timeoutMs: 5_000, what: 'the accepted title' })
  const id = parkedChangeId('marketo-to-dynamics', 'lead', babbage.recordId)
  const entry = await eventually(async () => await parked.get(id), { timeoutMs: 5_000, what: 'the parked change' })
  t.match(entry, { direction: 'marketo-to-dynamics', table: 'lead', recordId: babbage.recordId, personId: babbage.personId, fields: ['title'], columns: ['jobtitle'], code: /^0x/, status: 400, attempts: 1, activityLogged: true })

  const [activity, ...more] = await syncFailures(babbage.personId)
  t.equal(more.length, 0, 'one failure in the activity log')
  t.match(activity, {
    primaryAttributeValue: babbage.recordId,
    attributes: [{ name: 'Dynamics Entity', value: 'lead' }, { name: 'Error Code', value: entry.code }, { name: 'Error Message', value: /jobtitle/ }, { name: 'Fields', value: 'title' }]
  })
  t.same(await syncFailures(somerville.personId), [], 'nothing for the person written fine')
  t.ok((await checkpoints.load(MARKETO_CHECKPOINT)).version > before.version, 'the checkpoint advanced past the refused change')

  await twoMarketoPassesLater()
  t.equal((await parked.get(id))?.attempts, 1, 'not retried by every pass')
  t.equal((await syncFailures(babbage.personId)).length, 1)
  t.equal(sandbox.dataverse.store.get('leads', babbage.recordId)?.jobtitle, 'Mathematician', 'the refused record is left as it was')
})

t.test('a second refusal, in a later pass, uses the activity type created by the first', async (t) => {
  const lovelace = await linkedLead({ lastname: 'Lovelace', emailaddress1: 'ada.lovelace@example.com', jobtitle: 'Analyst' })
  await editInMarketo(lovelace.personId, { title: tooLong })
  await eventually(async () => await parked.get(parkedChangeId('marketo-to-dynamics', 'lead', lovelace.recordId)), { timeoutMs: 5_000, what: 'the second parked change' })
  t.equal((await syncFailures(lovelace.personId)).length, 1)
  t.equal(sandbox.marketo.customActivityTypes.list().filter((type) => type.apiName === SYNC_FAILURE_ACTIVITY_TYPE.apiName).length, 1, 'one type')
})

t.test('retried before the value is fixed: refused again, one more attempt and one more activity', async (t) => {
  await worker.close()
  const id = parkedChangeId('marketo-to-dynamics', 'lead', babbage.recordId)
  t.equal(await retryParkedChange(await retryDeps(), id), 'refused')
  t.match(await parked.get(id), { attempts: 2, code: /^0x/ })
  t.equal((await syncFailures(babbage.personId)).length, 2)
})

t.test('after fixing the value in Marketo, a retry writes it and clears the entry', async (t) => {
  // The worker is stopped: the retry, not a pass, must deliver the fix.
  await editInMarketo(babbage.personId, { title: 'Inventor of the difference engine' })
  const id = parkedChangeId('marketo-to-dynamics', 'lead', babbage.recordId)
  t.equal(await retryParkedChange(await retryDeps(), id), 'written')
  t.equal(sandbox.dataverse.store.get('leads', babbage.recordId)?.jobtitle, 'Inventor of the difference engine')
  t.equal(await parked.get(id), undefined, 'the entry is cleared')
  await t.rejects(retryParkedChange(await retryDeps(), id), { code: 'PARKED_CHANGE_NOT_FOUND' })

  worker = harness.startWorker()
  await twoMarketoPassesLater()
  t.equal(sandbox.dataverse.store.get('leads', babbage.recordId)?.jobtitle, 'Inventor of the difference engine', 'the pass that reads the fix finds it written')
  t.equal(await parked.get(id), undefined)
})

t.test('a parked change that a later Marketo edit delivers is cleared by that pass', async (t) => {
  const lovelace = (await parked.list({ direction: 'marketo-to-dynamics' }))[0]!
  await editInMarketo(lovelace.personId, { title: 'Countess' })
  await eventually(async () => await parked.get(lovelace.id) === undefined ? true : undefined, { timeoutMs: 5_000, what: 'the entry cleared' })
  t.equal(sandbox.dataverse.store.get('leads', lovelace.recordId)?.jobtitle, 'Countess')
})

t.test('no email, refused value or Dynamics message in any log line', async (t) => {
  const logs = harness.logText()
  t.notOk(logs.includes('very very'), 'no refused value')
  t.notOk(logs.includes('exceeded'), 'no Dynamics message')
  t.notOk(logs.includes('charles.babbage@example.com'), 'no email')
  t.ok(harness.logs().some((line) => line.msg === 'Dynamics refused a background-sync update'), 'the refusal is logged, by code')
})
