import t from 'tap'
import { eventually } from '../helpers/flow-step-harness.ts'
import { startBackgroundSyncHarness } from '../helpers/background-sync-harness.ts'
import { readFieldMappingFile } from '../../src/sync/field-mapping-file.ts'
import { SANDBOX_USERS } from '../../sandbox/start-sandbox.ts'
import { CheckpointStore } from '../../src/background-sync/checkpoints.ts'
import { personLinkKey, recordLinkKey } from '../../src/queue/redis-keys.ts'

/**
 * Identity and duplicates, Dynamics → Marketo (issue 12 §3): where Marketo's native sync would
 * create a second person for a new Dynamics record whose email a Marketo person already has, ours
 * links to that person when exactly one unlinked person has it, and creates nothing and reports the
 * record when several do or when the only ones are linked to other records. A worker with
 * BACKGROUND_SYNC=on, real Redis and BullMQ, the emulated Dataverse and Marketo.
 */

const harness = await startBackgroundSyncHarness(t)
const { sandbox, config, redis } = harness
const prefix = config.redis.keyPrefix
const dana = SANDBOX_USERS.dana.systemuserid
const checkpoints = new CheckpointStore(redis, prefix)
const leadCheckpoint = { direction: 'dynamics-to-marketo', table: 'lead' } as const

harness.startWorker()

const personsWith = (email: string) => sandbox.marketo.persons.list().filter((person) => String(person.email).toLowerCase() === email)

/** Waits for a lead pass that started after this call to save its checkpoint. */
async function leadPassesAfterNow (): Promise<void> {
  const { version } = await checkpoints.load(leadCheckpoint)
  await eventually(async () => (await checkpoints.load(leadCheckpoint)).version >= version + 2 ? true : undefined, { timeoutMs: 5_000, what: 'two more lead passes' })
}

const mapping = readFieldMappingFile(config.sync.fieldMappingFile)
const reportsFor = (recordId: string) => harness.logs().filter((line) => line.recordId === recordId && typeof line.reason === 'string')

t.test('a new lead whose email belongs to exactly one unlinked person is linked to it: no second person', async (t) => {
  const existing = sandbox.marketo.persons.create({ email: 'mary.somerville@example.com', firstName: 'Mary', lastName: 'Fairfax', phone: '+44 20 7946 0000', [mapping.deletedFlag.marketoField]: true })
  const leadId = sandbox.dataverse.store.insert('leads', {
    firstname: 'Mary', lastname: 'Somerville', emailaddress1: 'Mary.Somerville@example.com', jobtitle: 'Astronomer', _modifiedby_value: dana
  })
  const link = await eventually(async () => await redis.get(recordLinkKey(prefix, 'lead', leadId)) ?? undefined, { timeoutMs: 5_000, what: 'the link' })
  t.equal(link, String(existing), 'the lead is linked to the person Marketo already had')
  t.equal(personsWith('mary.somerville@example.com').length, 1, 'no second person')
  t.match(sandbox.marketo.persons.get(existing), {
    title: 'Astronomer', // empty in Marketo: filled from Dynamics
    lastName: 'Fairfax', // set on both sides, a lead: Marketo wins the collision
    [mapping.deletedFlag.marketoField]: false
  })
  // …and Dynamics gets Marketo's side at once: Marketo's collision win and a field empty in Dynamics.
  // Nothing in Marketo's change feed would carry them later (no recent Marketo edit).
  const lead = await eventually(() => {
    const row = sandbox.dataverse.store.get('leads', leadId)
    return row?.lastname === 'Fairfax' && row.telephone1 === '+44 20 7946 0000' ? row : undefined
  }, { timeoutMs: 5_000, what: 'Marketo\'s values in the lead' })
  t.match(lead, { lastname: 'Fairfax', telephone1: '+44 20 7946 0000', jobtitle: 'Astronomer' }, 'both sides end equal')
  await leadPassesAfterNow()
  t.equal(personsWith('mary.somerville@example.com')[0]?.lastName, 'Fairfax', 'and stay so: the write to Dynamics did not come back as a change')
})

t.test('a new lead whose email belongs to two unlinked persons creates nothing and is reported', async (t) => {
  const first = sandbox.marketo.persons.create({ email: 'caroline.herschel@example.com', lastName: 'Herschel' })
  const second = sandbox.marketo.persons.create({ email: 'caroline.herschel@example.com', lastName: 'Herschel' })
  const leadId = sandbox.dataverse.store.insert('leads', { lastname: 'Herschel', emailaddress1: 'caroline.herschel@example.com', _modifiedby_value: dana })
  const [report] = await eventually(() => reportsFor(leadId).length > 0 ? reportsFor(leadId) : undefined, { timeoutMs: 5_000, what: 'the report' })
  t.match(report, { table: 'lead', recordId: leadId, reason: 'SEVERAL_UNLINKED_PERSONS', marketoIds: [first, second] })
  t.notMatch(JSON.stringify(report), /herschel/i, 'the report names no email or value')
  await leadPassesAfterNow()
  t.equal(personsWith('caroline.herschel@example.com').length, 2, 'no third person')
  t.equal(await redis.get(recordLinkKey(prefix, 'lead', leadId)), null, 'the lead is not linked')
  t.same(await redis.exists(personLinkKey(prefix, first), personLinkKey(prefix, second)), 0, 'neither person is linked')
})

t.test('a new lead whose email belongs only to a person linked to a contact creates nothing and is reported', async (t) => {
  const contactId = sandbox.dataverse.store.insert('contacts', { lastname: 'Noether', emailaddress1: 'emmy.noether@example.com', _modifiedby_value: dana })
  const personId = Number(await eventually(async () => await redis.get(recordLinkKey(prefix, 'contact', contactId)) ?? undefined, { timeoutMs: 5_000, what: 'the contact\'s person' }))
  const leadId = sandbox.dataverse.store.insert('leads', { lastname: 'Noether', emailaddress1: 'emmy.noether@example.com', jobtitle: 'Mathematician', _modifiedby_value: dana })
  const [report] = await eventually(() => reportsFor(leadId).length > 0 ? reportsFor(leadId) : undefined, { timeoutMs: 5_000, what: 'the report' })
  t.match(report, { table: 'lead', recordId: leadId, reason: 'PERSON_LINKED_ELSEWHERE', marketoIds: [personId] })
  await leadPassesAfterNow()
  t.equal(personsWith('emmy.noether@example.com').length, 1, 'no second person')
  t.equal(await redis.get(recordLinkKey(prefix, 'lead', leadId)), null, 'the lead is not linked')
  t.match(await redis.hgetall(personLinkKey(prefix, personId)), { type: 'Contact', id: contactId }, 'the person still follows the contact')
  t.not(sandbox.marketo.persons.get(personId)?.title, 'Mathematician', 'the lead wrote nothing to the contact\'s person')
})
