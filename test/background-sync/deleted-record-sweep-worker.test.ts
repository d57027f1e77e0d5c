import t from 'tap'
import { eventually } from '../helpers/flow-step-harness.ts'
import { startBackgroundSyncHarness } from '../helpers/background-sync-harness.ts'
import { SANDBOX_USERS } from '../../sandbox/start-sandbox.ts'
import { CheckpointStore } from '../../src/background-sync/checkpoints.ts'
import { syncDeletedRecordSweepKey } from '../../src/queue/redis-keys.ts'

/**
 * Deletes change tracking cannot show (issue 12 §1, §7), in the worker `npm run worker` builds,
 * on a real Redis with BullMQ job schedulers, against the emulated Dataverse and Marketo. Leads are
 * change-tracked (a delta link that expires); contacts are not (read by `modifiedon`, swept every
 * second here). The Marketo feed is polled once an hour, so Marketo's call count is the sync's own.
 */

const harness = await startBackgroundSyncHarness(t, { SYNC_DELETED_RECORD_SWEEP_INTERVAL_MS: '1000', SYNC_MARKETO_POLL_INTERVAL_MS: '3600000' })
const { sandbox, config, redis } = harness
const prefix = config.redis.keyPrefix
const dana = SANDBOX_USERS.dana.systemuserid
const checkpoints = new CheckpointStore(redis, prefix)
sandbox.dataverse.changeTracking.setTracked('contacts', false)
harness.startWorker()

const { dataverse, marketo } = sandbox
const flagged = (marketoId: number) => marketo.persons.get(marketoId)?.microsoftIsDeleted === true

async function syncedPerson (email: string): Promise<number> {
  const person = await eventually(() => marketo.persons.findByEmail(email), { timeoutMs: 10_000, what: `the person of ${email}` })
  return person.id as number
}

const sweepsBegun = (table: string) => harness.logs().filter((line) => line.msg?.toString().startsWith('a sweep of the table') === true && line.table === table)

t.test('a lead deleted while its delta link was expired: after the full read and the sweep its person is flagged, the others untouched', async (t) => {
  const ids = ['ada', 'bea', 'cy'].map((name) => dataverse.store.insert('leads', { lastname: name, emailaddress1: `${name}.lead@example.com`, jobtitle: 'Engineer', _modifiedby_value: dana }))
  const persons = await Promise.all(['ada', 'bea', 'cy'].map(async (name) => await syncedPerson(`${name}.lead@example.com`)))
  await eventually(async () => (await checkpoints.load({ direction: 'dynamics-to-marketo', table: 'lead' })).cursor?.includes('$deltatoken=') === true || undefined, { what: 'a delta link' })
  const updatedAt = persons.map((id) => marketo.persons.get(id)?.updatedAt)

  // In one turn of the event loop: no delta read can see the delete before the link expired.
  dataverse.changeTracking.expireTokens()
  dataverse.store.delete('leads', ids[1]!)

  await eventually(() => flagged(persons[1]!) || undefined, { timeoutMs: 15_000, what: 'the deleted lead\'s person flagged' })
  t.match(marketo.persons.get(persons[1]!), { email: 'bea.lead@example.com', title: 'Engineer' }, 'the person stays, as it was')
  t.same([persons[0]!, persons[2]!].map(flagged), [false, false], 'the others are not flagged')
  t.same([persons[0], persons[2]].map((id) => marketo.persons.get(id!)?.updatedAt), [updatedAt[0], updatedAt[2]], 'nor written')
  t.match(sweepsBegun('lead'), [{ reason: 'delta-token-expired' }], 'one sweep, for the expired link')
})

t.test('a tracked table is not swept again: the sweep ran once, however many passes follow', async (t) => {
  const { version } = await checkpoints.load({ direction: 'dynamics-to-marketo', table: 'lead' })
  await eventually(async () => (await checkpoints.load({ direction: 'dynamics-to-marketo', table: 'lead' })).version >= version + 5 || undefined, { what: 'five more lead passes' })
  t.equal(sweepsBegun('lead').length, 1)
})

t.test('contacts read by modifiedon: a full sweep with nothing missing costs no Marketo call', async (t) => {
  const names = ['dee', 'eve']
  for (const name of names) dataverse.store.insert('contacts', { lastname: name, emailaddress1: `${name}.contact@example.com`, _modifiedby_value: dana })
  await Promise.all(names.map(async (name) => await syncedPerson(`${name}.contact@example.com`)))
  // Past the watermark's 10 s overlap is not needed: rows read again equal their last-synced state.
  const sweepKey = syncDeletedRecordSweepKey(prefix, 'contact')
  const completed = async () => Number(await redis.hget(sweepKey, 'lastCompletedAt') ?? 0)
  const since = await eventually(async () => (await completed()) > 0 ? await completed() : undefined, { what: 'a first contact sweep' })
  const calls = marketo.restCallCount()
  const started = Date.now()
  // A sweep begun and ended after this point, all of it with nothing missing.
  await eventually(async () => (await completed()) > since && Number(await redis.hget(sweepKey, 'lastStartedAt')) >= started ? true : undefined, { timeoutMs: 10_000, what: 'a whole sweep later' })
  t.equal(marketo.restCallCount(), calls, 'no Marketo call')
})

t.test('contacts read by modifiedon: a deleted linked contact flags its person at the next periodic sweep, the other untouched', async (t) => {
  const dee = await syncedPerson('dee.contact@example.com')
  const eve = await syncedPerson('eve.contact@example.com')
  const eveContact = dataverse.store.scan('contacts').find((row) => row.emailaddress1 === 'eve.contact@example.com')!
  const deeUpdatedAt = marketo.persons.get(dee)?.updatedAt
  dataverse.store.delete('contacts', String(eveContact.contactid))
  await eventually(() => flagged(eve) || undefined, { timeoutMs: 15_000, what: 'the deleted contact\'s person flagged' })
  t.equal(flagged(dee), false)
  t.equal(marketo.persons.get(dee)?.updatedAt, deeUpdatedAt, 'the other person is not written')
  t.ok(sweepsBegun('contact').length >= 2 && sweepsBegun('contact').every((line) => line.reason === 'watermark-period'), 'periodic sweeps, for the modifiedon table')
})

t.test('the logs hold no email address', async (t) => {
  t.notMatch(harness.logText(), /example\.com/)
})
