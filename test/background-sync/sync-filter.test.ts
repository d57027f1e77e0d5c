import t from 'tap'
import { eventually } from '../helpers/flow-step-harness.ts'
import { startBackgroundSyncHarness } from '../helpers/background-sync-harness.ts'
import { SANDBOX_USERS } from '../../sandbox/start-sandbox.ts'
import { CheckpointStore } from '../../src/background-sync/checkpoints.ts'
import { recordLinkKey, syncPairStateKey } from '../../src/queue/redis-keys.ts'

/**
 * The sync filter `new_synctomkto` (issue 12 §8; marketo-native-dynamics-sync.md §5) as a salesperson
 * meets it: the worker `npm run worker` builds, BACKGROUND_SYNC=on, real Redis and BullMQ, the
 * emulated Dataverse (whose lead and contact tables have the column) and Marketo. Dana edits in Dynamics.
 */

const harness = await startBackgroundSyncHarness(t)
const { sandbox, config, redis } = harness
const prefix = config.redis.keyPrefix
const dana = SANDBOX_USERS.dana.systemuserid
const checkpoints = new CheckpointStore(redis, prefix)
const leadCheckpoint = { direction: 'dynamics-to-marketo', table: 'lead' } as const

harness.startWorker()

const personByEmail = (email: string) => sandbox.marketo.persons.findByEmail(email)

/** Waits until two lead passes have saved since now: the second one loaded its checkpoint after this call. */
async function twoLeadPassesLater (): Promise<void> {
  const { version } = await checkpoints.load(leadCheckpoint)
  await eventually(async () => (await checkpoints.load(leadCheckpoint)).version >= version + 2 ? true : undefined, { timeoutMs: 5_000, what: 'two more lead passes' })
}

async function linkedPerson (leadId: string): Promise<number> {
  return Number(await eventually(async () => await redis.get(recordLinkKey(prefix, 'lead', leadId)) ?? undefined, { timeoutMs: 5_000, what: 'the lead\'s link' }))
}

let noLeadId = ''

t.test('filter No: a new lead is not created in Marketo, linked or remembered', async (t) => {
  noLeadId = sandbox.dataverse.store.insert('leads', { lastname: 'Vaughan', emailaddress1: 'dorothy.vaughan@example.com', new_synctomkto: false, _modifiedby_value: dana })
  await twoLeadPassesLater()
  t.equal(personByEmail('dorothy.vaughan@example.com'), undefined, 'no person')
  t.equal(await redis.get(recordLinkKey(prefix, 'lead', noLeadId)), null, 'no link')
  t.equal(await redis.exists(syncPairStateKey(prefix, 'lead', noLeadId)), 0, 'no last-synced state')
})

t.test('filter Yes: a new lead becomes a person', async (t) => {
  sandbox.dataverse.store.insert('leads', { lastname: 'Johnson', emailaddress1: 'katherine.johnson@example.com', new_synctomkto: true, _modifiedby_value: dana })
  const person = await eventually(() => personByEmail('katherine.johnson@example.com'), { timeoutMs: 5_000, what: 'the person' })
  t.equal(person.lastName, 'Johnson')
})

t.test('filter empty (never set): a new lead becomes a person', async (t) => {
  const leadId = sandbox.dataverse.store.insert('leads', { lastname: 'Jackson', emailaddress1: 'mary.jackson@example.com', _modifiedby_value: dana })
  t.equal(sandbox.dataverse.store.get('leads', leadId)?.new_synctomkto, null, 'the column is there, empty')
  const person = await eventually(() => personByEmail('mary.jackson@example.com'), { timeoutMs: 5_000, what: 'the person' })
  t.equal(person.lastName, 'Jackson')
})

t.test('No → Yes: the filter edit itself creates the person, with the edits made while it was No', async (t) => {
  sandbox.dataverse.store.update('leads', noLeadId, { jobtitle: 'Mathematician', _modifiedby_value: dana })
  await twoLeadPassesLater()
  t.equal(personByEmail('dorothy.vaughan@example.com'), undefined, 'still No: still nothing')
  sandbox.dataverse.store.update('leads', noLeadId, { new_synctomkto: true, _modifiedby_value: dana })
  const person = await eventually(() => personByEmail('dorothy.vaughan@example.com'), { timeoutMs: 5_000, what: 'the person after No → Yes' })
  t.match(person, { lastName: 'Vaughan', title: 'Mathematician' })
  t.equal(await linkedPerson(noLeadId), person.id, 'linked')
})

t.test('Yes → No: the person stops getting updates and stays as it was; back to Yes, it catches up', async (t) => {
  const leadId = sandbox.dataverse.store.insert('leads', { lastname: 'Darden', emailaddress1: 'christine.darden@example.com', jobtitle: 'Analyst', _modifiedby_value: dana })
  const marketoId = await linkedPerson(leadId)
  await eventually(() => sandbox.marketo.persons.get(marketoId)?.title === 'Analyst' ? true : undefined, { what: 'the first sync' })
  const stateKey = syncPairStateKey(prefix, 'lead', leadId)
  const state = await eventually(async () => { const s = await redis.hgetall(stateKey); return s.title === undefined ? undefined : s }, { what: 'the pair state' })

  sandbox.dataverse.store.update('leads', leadId, { new_synctomkto: false, jobtitle: 'Engineer', _modifiedby_value: dana })
  await twoLeadPassesLater()
  sandbox.dataverse.store.update('leads', leadId, { jobtitle: 'Aeronautical Engineer', _modifiedby_value: dana })
  await twoLeadPassesLater()
  t.match(sandbox.marketo.persons.get(marketoId), { email: 'christine.darden@example.com', title: 'Analyst' }, 'the person is still there, stale')
  t.same(await redis.hgetall(stateKey), state, 'no state saved while No: the edits are still changes')

  sandbox.dataverse.store.update('leads', leadId, { new_synctomkto: true, _modifiedby_value: dana })
  await eventually(() => sandbox.marketo.persons.get(marketoId)?.title === 'Aeronautical Engineer' ? true : undefined, { timeoutMs: 5_000, what: 'the title after No → Yes' })
  t.equal(sandbox.marketo.persons.list().filter((person) => person.email === 'christine.darden@example.com').length, 1, 'the same person, no second one')
})

t.test('a skipped record is logged with its id only', async (t) => {
  const lines = harness.logs().filter((line) => line.msg === 'Dynamics changes delivered to Marketo' && typeof line.filtered === 'number' && (line.filtered as number) > 0)
  t.ok(lines.length > 0, 'the pass counts the filtered records')
  t.notOk(harness.logText().includes('dorothy.vaughan@example.com'), 'no email in the logs')
})
