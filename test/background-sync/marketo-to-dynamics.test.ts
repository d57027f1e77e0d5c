import t from 'tap'
import { Queue } from 'bullmq'
import { eventually } from '../helpers/flow-step-harness.ts'
import { startBackgroundSyncHarness, editPersonInMarketo, syncedRecord } from '../helpers/background-sync-harness.ts'
import { SANDBOX_USERS } from '../../sandbox/start-sandbox.ts'
import { CheckpointStore } from '../../src/background-sync/checkpoints.ts'
import { MARKETO_CHECKPOINT } from '../../src/background-sync/marketo-change-pass.ts'
import { QUEUE } from '../../src/queue/names.ts'
import { queuePrefix } from '../../src/queue/redis-keys.ts'
import type { RunningWorker } from '../../src/build-worker.ts'

/**
 * The Marketo → Dynamics direction of the background sync (issue 12 §2, §5, §6, §10), run by the
 * worker `npm run worker` builds, with BACKGROUND_SYNC=on, on a real Redis with real BullMQ job
 * schedulers, against the emulated Marketo (lead-change feed, paging tokens) and Dataverse
 * (UpdateMultiple). Persons are linked the way the running sync links them: a record created in
 * Dynamics becomes a person. A marketer edits in Marketo through the emulator's HTTP control API.
 */

// Every tick a poll: the floor and the ceiling both 200 ms, and a budget that pays for it all day.
const harness = await startBackgroundSyncHarness(t, { SYNC_MARKETO_POLL_INTERVAL_MS: '200', SYNC_MARKETO_POLL_MAX_INTERVAL_MS: '200', MARKETO_DAILY_CALL_BUDGET: '1000000' })
const { sandbox, config, redis } = harness
const prefix = config.redis.keyPrefix
const dana = SANDBOX_USERS.dana.systemuserid
const checkpoints = new CheckpointStore(redis, prefix)

let worker: RunningWorker = harness.startWorker()

const editInMarketo = async (personId: number, fields: Record<string, unknown>): Promise<void> => { await editPersonInMarketo(config.marketo.baseUrl, personId, fields) }

/** A record created in Dynamics, synced to a new person and linked by the running Dynamics → Marketo direction. */
async function linkedRecord (entitySet: 'leads' | 'contacts', fields: Record<string, unknown>): Promise<{ recordId: string, personId: number }> {
  return await syncedRecord(harness, entitySet === 'leads' ? 'lead' : 'contact', fields)
}

/** Waits until two Marketo passes have saved since now: the second one loaded its checkpoint after this call. */
async function twoMarketoPassesLater (): Promise<void> {
  const { version } = await checkpoints.load(MARKETO_CHECKPOINT)
  await eventually(async () => (await checkpoints.load(MARKETO_CHECKPOINT)).version >= version + 2 ? true : undefined, { timeoutMs: 5_000, what: 'two more Marketo passes' })
}

const bulkWrites = () => sandbox.dataverse.requestCount({ method: 'POST', entitySet: 'leads' })
const lead = (id: string) => sandbox.dataverse.store.get('leads', id)

let ada = { recordId: '', personId: 0 }

t.test('a new sync starts from now: its first pass saves a paging token and writes nothing', async (t) => {
  const checkpoint = await eventually(async () => {
    const loaded = await checkpoints.load(MARKETO_CHECKPOINT)
    return loaded.cursor === undefined ? undefined : loaded
  }, { timeoutMs: 5_000, what: 'the Marketo checkpoint' })
  t.ok(checkpoint.version >= 1)
  t.equal(bulkWrites(), 0, 'no history replayed into Dynamics')
})

t.test('a title edited in Marketo reaches the linked Dynamics lead within seconds', async (t) => {
  ada = await linkedRecord('leads', { firstname: 'Ada', lastname: 'Lovelace', emailaddress1: 'ada.lovelace@example.com', jobtitle: 'Engineer' })
  await editInMarketo(ada.personId, { title: 'Chief Engineer' })
  await eventually(() => lead(ada.recordId)?.jobtitle === 'Chief Engineer' ? true : undefined, { timeoutMs: 5_000, what: 'the new job title in Dynamics' })
  t.match(lead(ada.recordId), { firstname: 'Ada', lastname: 'Lovelace', emailaddress1: 'ada.lovelace@example.com' }, 'the other columns untouched')
})

t.test('then silence: later passes write nothing to Dynamics, and nothing comes back to Marketo', async (t) => {
  // The Dynamics → Marketo direction sees our write come back and must leave the person alone too.
  const writes = bulkWrites()
  const version = lead(ada.recordId)?.versionnumber
  const personUpdatedAt = sandbox.marketo.persons.get(ada.personId)?.updatedAt
  await twoMarketoPassesLater()
  await twoMarketoPassesLater()
  t.equal(bulkWrites(), writes, 'no UpdateMultiple')
  t.equal(lead(ada.recordId)?.versionnumber, version, 'the lead is untouched')
  t.equal(sandbox.marketo.persons.get(ada.personId)?.updatedAt, personUpdatedAt, 'the person is untouched')
})

t.test('an unlinked person edited in Marketo writes nothing to Dynamics, and is not created there', async (t) => {
  const personId = sandbox.marketo.persons.create({ email: 'grace.hopper@example.com', lastName: 'Hopper', title: 'Admiral' })
  const writes = bulkWrites()
  const leads = sandbox.dataverse.store.list('leads').length
  await editInMarketo(personId, { title: 'Rear Admiral' })
  await twoMarketoPassesLater()
  t.equal(bulkWrites(), writes, 'no UpdateMultiple')
  t.equal(sandbox.dataverse.store.list('leads').length, leads, 'no lead created')
  t.equal(sandbox.dataverse.store.list('contacts').filter((c) => c.emailaddress1 === 'grace.hopper@example.com').length, 0, 'no contact created')
})

/** Both sides edited while the sync is away: the worker stopped, then started again. */
async function whileTheSyncIsAway (edits: () => Promise<void>): Promise<void> {
  await worker.close()
  await edits()
  worker = harness.startWorker()
}

t.test('a lead collision (both sides edited the title since the last sync): Marketo wins', async (t) => {
  const grace = await linkedRecord('leads', { lastname: 'Lamarr', emailaddress1: 'hedy.lamarr@example.com', jobtitle: 'Actress' })
  await whileTheSyncIsAway(async () => {
    await editInMarketo(grace.personId, { title: 'Inventor' })
    sandbox.dataverse.store.update('leads', grace.recordId, { jobtitle: 'Film Star', _modifiedby_value: dana })
  })
  await eventually(() => lead(grace.recordId)?.jobtitle === 'Inventor' ? true : undefined, { timeoutMs: 5_000, what: 'Marketo\'s title in Dynamics' })
  await twoMarketoPassesLater()
  t.equal(lead(grace.recordId)?.jobtitle, 'Inventor', 'the lead keeps Marketo\'s value')
  t.equal(sandbox.marketo.persons.get(grace.personId)?.title, 'Inventor', 'the person keeps its own value')
})

t.test('a contact collision (both sides edited the title since the last sync): Dynamics wins', async (t) => {
  const contact = await linkedRecord('contacts', { lastname: 'Franklin', emailaddress1: 'rosalind.franklin@example.com', jobtitle: 'Chemist' })
  await whileTheSyncIsAway(async () => {
    await editInMarketo(contact.personId, { title: 'Biologist' })
    sandbox.dataverse.store.update('contacts', contact.recordId, { jobtitle: 'Crystallographer', _modifiedby_value: dana })
  })
  await eventually(() => sandbox.marketo.persons.get(contact.personId)?.title === 'Crystallographer' ? true : undefined, { timeoutMs: 5_000, what: 'Dynamics\' title in Marketo' })
  await twoMarketoPassesLater()
  t.equal(sandbox.dataverse.store.get('contacts', contact.recordId)?.jobtitle, 'Crystallographer', 'the contact keeps its own value')
  t.equal(sandbox.marketo.persons.get(contact.personId)?.title, 'Crystallographer', 'the person has Dynamics\' value')
})

t.test('while Dynamics fails the checkpoint stays, and the change arrives once Dynamics answers again', async (t) => {
  const queue = new Queue(QUEUE.syncMarketoChanges, { connection: redis, prefix: queuePrefix(prefix, QUEUE.syncMarketoChanges) })
  t.teardown(async () => { await queue.close() })
  const failedBefore = await queue.getFailedCount()
  sandbox.dataverse.faults.failNext(10_000, 503)
  const held = await checkpoints.load(MARKETO_CHECKPOINT)
  await editInMarketo(ada.personId, { title: 'Countess' })
  await eventually(async () => await queue.getFailedCount() >= failedBefore + 2 ? true : undefined, { timeoutMs: 20_000, what: 'two failed Marketo passes' })
  t.match(await checkpoints.load(MARKETO_CHECKPOINT), { version: held.version, cursor: held.cursor }, 'a pass whose write failed saved nothing')
  t.equal(lead(ada.recordId)?.jobtitle, 'Chief Engineer')

  sandbox.dataverse.faults.clear()
  await eventually(() => lead(ada.recordId)?.jobtitle === 'Countess' ? true : undefined, { timeoutMs: 10_000, what: 'the title once Dynamics answers' })
  await eventually(async () => (await checkpoints.load(MARKETO_CHECKPOINT)).version > held.version ? true : undefined, { what: 'the checkpoint to advance' })
  t.pass('the checkpoint advanced after the write')
})

t.test('a value Dynamics refuses: that record is logged with Dynamics\' code (no value), and the rest of the page is written', async (t) => {
  const refused = await linkedRecord('leads', { lastname: 'Babbage', emailaddress1: 'charles.babbage@example.com', jobtitle: 'Mathematician' })
  const accepted = await linkedRecord('leads', { lastname: 'Somerville', emailaddress1: 'mary.somerville@example.com', jobtitle: 'Astronomer' })
  const tooLong = `Inventor of the ${'very '.repeat(30)}difference engine` // jobtitle holds 100 characters
  await whileTheSyncIsAway(async () => {
    await editInMarketo(refused.personId, { title: tooLong })
    await editInMarketo(accepted.personId, { title: 'Polymath' })
  })
  await eventually(() => lead(accepted.recordId)?.jobtitle === 'Polymath' ? true : undefined, { timeoutMs: 5_000, what: 'the accepted title' })
  const warning = await eventually(() => harness.logs().find((line) => line.msg === 'Dynamics refused a background-sync update' && line.recordId === refused.recordId), { what: 'the refusal in the log' })
  t.match(warning, { table: 'lead', code: String, status: 400 })
  t.notOk(harness.logText().includes('very very'), 'the refused value is in no log line')
  await twoMarketoPassesLater()
  t.equal(lead(refused.recordId)?.jobtitle, 'Mathematician', 'the refused record is left as it was')
})

t.test('a lead source chosen in Marketo reaches the lead as its option value, not its label', async (t) => {
  const { recordId, personId } = await linkedRecord('leads', { lastname: 'Noether', emailaddress1: 'emmy.noether@example.com', leadsourcecode: 8, _modifiedby_value: dana })
  await eventually(() => sandbox.marketo.persons.get(personId)?.leadSource === 'Web' ? true : undefined, { timeoutMs: 5_000, what: 'the label on the person' })
  await editInMarketo(personId, { leadSource: 'Trade Show' })
  await eventually(() => sandbox.dataverse.store.get('leads', recordId)?.leadsourcecode === 7 ? true : undefined, { timeoutMs: 5_000, what: 'option 7 (Trade Show) on the lead' })
  t.pass('the worker read the option sets at start-up and wrote the label\'s value')
})
