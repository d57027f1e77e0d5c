import t from 'tap'
import { eventually } from '../helpers/flow-step-harness.ts'
import { startBackgroundSyncHarness } from '../helpers/background-sync-harness.ts'
import { SANDBOX_USERS } from '../../sandbox/start-sandbox.ts'
import { CheckpointStore } from '../../src/background-sync/checkpoints.ts'
import { personLinkKey, recordLinkKey, syncPairStateKey } from '../../src/queue/redis-keys.ts'

/**
 * The first running slice of the background sync (issue 12 §1, §6, §7, §10): a worker built by the
 * very runtime `npm run worker` uses, with BACKGROUND_SYNC=on, on a real Redis with real BullMQ job
 * schedulers, against the emulated Dataverse (change tracking) and Marketo (Sync Leads). A person
 * edits in Dynamics as Dana; the service's own writes are Alex's, the app user WhoAmI answers.
 */

const harness = await startBackgroundSyncHarness(t)
const { sandbox, config, redis } = harness
const prefix = config.redis.keyPrefix
const dana = SANDBOX_USERS.dana.systemuserid
const checkpoints = new CheckpointStore(redis, prefix)
const leadCheckpoint = { direction: 'dynamics-to-marketo', table: 'lead' } as const

harness.startWorker()

const personByEmail = (email: string) => sandbox.marketo.persons.findByEmail(email)

let leadId = ''
let marketoId = 0

t.test('a lead created in Dynamics becomes a linked Marketo person within seconds', async (t) => {
  leadId = sandbox.dataverse.store.insert('leads', {
    firstname: 'Ada', lastname: 'Lovelace', emailaddress1: 'ada.lovelace@example.com', jobtitle: 'Engineer', companyname: 'Analytical', _modifiedby_value: dana
  })
  const person = await eventually(() => personByEmail('ada.lovelace@example.com'), { timeoutMs: 5_000, what: 'the person in Marketo' })
  marketoId = person.id as number
  t.match(person, { firstName: 'Ada', lastName: 'Lovelace', title: 'Engineer', company: 'Analytical' })
  t.equal(await eventually(async () => await redis.get(recordLinkKey(prefix, 'lead', leadId)) ?? undefined, { what: 'the link' }), String(marketoId), 'the record is linked to the person')
  const state = await eventually(async () => {
    const fingerprints = await redis.hgetall(syncPairStateKey(prefix, 'lead', leadId))
    return Object.keys(fingerprints).length > 0 ? fingerprints : undefined
  }, { what: 'the last-synced state' })
  t.notOk(Object.values(state).some((value) => /Ada|Lovelace|Engineer|example\.com/.test(value)), 'the state holds fingerprints, no values')
})

t.test('a title edited in Dynamics reaches the person, and only that field is written', async (t) => {
  const before = sandbox.marketo.persons.activities(marketoId).length
  sandbox.dataverse.store.update('leads', leadId, { jobtitle: 'Chief Engineer', _modifiedby_value: dana })
  await eventually(() => personByEmail('ada.lovelace@example.com')?.title === 'Chief Engineer' ? true : undefined, { timeoutMs: 5_000, what: 'the new title' })
  const changes = sandbox.marketo.persons.activities(marketoId).slice(before)
  t.same(changes.flatMap((activity) => (activity as { fields?: Array<{ name: string }> }).fields?.map((field) => field.name) ?? []), ['title'], 'one Change Data Value, for the title')
})

/** Waits until two lead passes have saved since now: the second one loaded its checkpoint after this call. */
async function twoLeadPassesLater (): Promise<void> {
  const { version } = await checkpoints.load(leadCheckpoint)
  await eventually(async () => (await checkpoints.load(leadCheckpoint)).version >= version + 2 ? true : undefined, { timeoutMs: 5_000, what: 'two more lead passes' })
}

t.test('the service\'s own write coming back, with the last-synced values, is an echo: no Marketo call', async (t) => {
  const calls = sandbox.marketo.restCallCount()
  const updatedAt = personByEmail('ada.lovelace@example.com')?.updatedAt
  // Alex is the app user: what the Marketo → Dynamics direction would write, the same value.
  sandbox.dataverse.store.update('leads', leadId, { jobtitle: 'Chief Engineer' })
  await twoLeadPassesLater()
  t.equal(sandbox.marketo.restCallCount(), calls, 'no Marketo call')
  t.equal(personByEmail('ada.lovelace@example.com')?.updatedAt, updatedAt, 'the person is untouched')
})

t.test('an edit of an unmapped column writes nothing either', async (t) => {
  const calls = sandbox.marketo.restCallCount()
  sandbox.dataverse.store.update('leads', leadId, { websiteurl: 'https://example.com/ada', _modifiedby_value: dana })
  await twoLeadPassesLater()
  t.equal(sandbox.marketo.restCallCount(), calls)
})

t.test('a lead deleted in Dynamics sets the person\'s deleted flag and keeps the person', async (t) => {
  sandbox.dataverse.store.delete('leads', leadId)
  const person = await eventually(() => sandbox.marketo.persons.get(marketoId)?.microsoftIsDeleted === true ? sandbox.marketo.persons.get(marketoId) : undefined, { timeoutMs: 5_000, what: 'the deleted flag' })
  t.match(person, { email: 'ada.lovelace@example.com', title: 'Chief Engineer' }, 'the person is still there, as it was')
  // No pair any more: Redis keeps live pairs only (and the flow step run again makes a new lead).
  await eventually(async () => await redis.exists(recordLinkKey(prefix, 'lead', leadId), personLinkKey(prefix, marketoId), syncPairStateKey(prefix, 'lead', leadId)) === 0 ? true : undefined,
    { timeoutMs: 5_000, what: 'the link and the pair state removed' })
  t.pass('the link and the pair state are gone')
})

t.test('while Marketo refuses the writes the checkpoint stays, and the change arrives once Marketo answers again', async (t) => {
  sandbox.marketo.faults.errorNext('611', 'System error', 3)
  const calls = sandbox.marketo.restCallCount()
  sandbox.dataverse.store.insert('leads', { lastname: 'Hopper', emailaddress1: 'grace.hopper@example.com', _modifiedby_value: dana })
  await eventually(() => sandbox.marketo.restCallCount() >= calls + 1 ? true : undefined, { what: 'the first refused write' })
  const held = await checkpoints.load(leadCheckpoint)
  await eventually(() => sandbox.marketo.restCallCount() >= calls + 2 ? true : undefined, { what: 'a second refused write' })
  t.match(await checkpoints.load(leadCheckpoint), { version: held.version, cursor: held.cursor }, 'a pass whose write failed saved nothing')
  t.equal(personByEmail('grace.hopper@example.com'), undefined)

  const person = await eventually(() => personByEmail('grace.hopper@example.com'), { timeoutMs: 5_000, what: 'the person once Marketo answers' })
  t.equal(person.lastName, 'Hopper')
  await eventually(async () => (await checkpoints.load(leadCheckpoint)).version > held.version ? true : undefined, { what: 'the checkpoint to advance' })
  t.pass('the checkpoint advanced after the write was accepted')
  t.equal(sandbox.marketo.persons.list().filter((p) => p.email === 'grace.hopper@example.com').length, 1, 'one person, not one per try')
})

t.test('a write Marketo refuses is not taken for synced: the record keeps its last-synced state', async (t) => {
  const recordId = sandbox.dataverse.store.insert('leads', { firstname: 'Katherine', lastname: 'Johnson', emailaddress1: 'katherine.johnson@example.com', jobtitle: 'Mathematician', _modifiedby_value: dana })
  const person = await eventually(() => personByEmail('katherine.johnson@example.com'), { timeoutMs: 5_000, what: 'the person in Marketo' })
  const stateKey = syncPairStateKey(prefix, 'lead', recordId)
  const synced = await eventually(async () => {
    const fingerprints = await redis.hgetall(stateKey)
    return fingerprints.title === undefined ? undefined : fingerprints
  }, { what: 'the last-synced state' })
  // An email Marketo cannot take (not ASCII): Marketo skips the update with 1003 Invalid data.
  const held = await checkpoints.load(leadCheckpoint)
  sandbox.dataverse.store.update('leads', recordId, { jobtitle: 'Research Mathematician', emailaddress1: 'katherine.jöhnson@example.com', _modifiedby_value: dana })
  await eventually(async () => (await checkpoints.load(leadCheckpoint)).version > held.version ? true : undefined, { timeoutMs: 5_000, what: 'the pass that met the refusal' })
  t.same(await redis.hgetall(stateKey), synced, 'the state is the one before the refused write, so the change is still one')
  t.equal(sandbox.marketo.persons.get(person.id as number)?.title, 'Mathematician', 'the person is as it was')
})

t.test('a lead without an email is not created in Marketo, however often its page is delivered', async (t) => {
  const persons = sandbox.marketo.persons.list().length
  const held = await checkpoints.load(leadCheckpoint)
  sandbox.dataverse.store.insert('leads', { lastname: 'Nameless', _modifiedby_value: dana })
  await eventually(async () => (await checkpoints.load(leadCheckpoint)).version > held.version ? true : undefined, { timeoutMs: 5_000, what: 'the pass that read it' })
  t.equal(sandbox.marketo.persons.list().length, persons, 'no person without an email: a retried page would create one each time')
})
