import t from 'tap'
import { eventually } from '../helpers/flow-step-harness.ts'
import { startBackgroundSyncHarness, editPersonInMarketo, syncedRecord } from '../helpers/background-sync-harness.ts'
import { SANDBOX_USERS } from '../../sandbox/start-sandbox.ts'
import { CheckpointStore } from '../../src/background-sync/checkpoints.ts'
import { MARKETO_CHECKPOINT } from '../../src/background-sync/marketo-change-pass.ts'
import { recordLinkKey } from '../../src/queue/redis-keys.ts'
import type { RunningWorker } from '../../src/build-worker.ts'

/**
 * Both directions at once, as a user sees them (issue 12 §5, §7): edits of different fields on
 * each side while the sync is away both survive; deletes follow Marketo's documented rules
 * (marketo-native-dynamics-sync.md §7) — a Marketo delete is never pushed to Dynamics, and a person
 * whose Dynamics lead was deleted gets a new lead when the flow step runs for them again.
 */

const harness = await startBackgroundSyncHarness(t, { SYNC_MARKETO_POLL_INTERVAL_MS: '200' })
const { sandbox, config, redis, service } = harness
const prefix = config.redis.keyPrefix
const dana = SANDBOX_USERS.dana.systemuserid
const checkpoints = new CheckpointStore(redis, prefix)
let worker: RunningWorker = harness.startWorker()

const editInMarketo = async (personId: number, fields: Record<string, unknown>): Promise<void> => { await editPersonInMarketo(config.marketo.baseUrl, personId, fields) }

async function linkedLead (fields: Record<string, unknown>): Promise<{ recordId: string, personId: number }> {
  return await syncedRecord(harness, 'lead', fields)
}

async function twoMarketoPassesLater (): Promise<void> {
  const { version } = await checkpoints.load(MARKETO_CHECKPOINT)
  await eventually(async () => (await checkpoints.load(MARKETO_CHECKPOINT)).version >= version + 2 ? true : undefined, { timeoutMs: 5_000, what: 'two more Marketo passes' })
}

const lead = (id: string) => sandbox.dataverse.store.get('leads', id)

t.test('different fields edited on each side while the sync is away: both edits reach both sides', async (t) => {
  const pair = await linkedLead({ lastname: 'Curie', emailaddress1: 'marie.curie@example.com', jobtitle: 'Physicist', address1_city: 'Warsaw' })
  await worker.close()
  await editInMarketo(pair.personId, { title: 'Chemist' })
  sandbox.dataverse.store.update('leads', pair.recordId, { address1_city: 'Paris', _modifiedby_value: dana })
  worker = harness.startWorker()

  await eventually(() => lead(pair.recordId)?.jobtitle === 'Chemist' && sandbox.marketo.persons.get(pair.personId)?.city === 'Paris' ? true : undefined,
    { timeoutMs: 10_000, what: 'each edit on the other side' })
  await twoMarketoPassesLater()
  t.match(lead(pair.recordId), { jobtitle: 'Chemist', address1_city: 'Paris' }, 'the lead has both edits')
  t.match(sandbox.marketo.persons.get(pair.personId), { title: 'Chemist', city: 'Paris' }, 'the person has both edits')
})

t.test('a person deleted in Marketo is not deleted in Dynamics; a later Dynamics edit makes a new person, as the native sync does', async (t) => {
  const pair = await linkedLead({ lastname: 'Meitner', emailaddress1: 'lise.meitner@example.com', jobtitle: 'Physicist' })
  const deletesBefore = sandbox.dataverse.requestCount({ method: 'DELETE', entitySet: 'leads' })
  t.ok(sandbox.marketo.persons.remove(pair.personId), 'the marketer deletes the person')
  await twoMarketoPassesLater()
  t.ok(lead(pair.recordId) !== undefined, 'the lead is still in Dynamics')
  t.equal(sandbox.dataverse.requestCount({ method: 'DELETE', entitySet: 'leads' }), deletesBefore, 'no delete was sent to Dynamics')

  sandbox.dataverse.store.update('leads', pair.recordId, { jobtitle: 'Nuclear Physicist', _modifiedby_value: dana })
  const newPersonId = Number(await eventually(async () => {
    const linked = Number(await redis.get(recordLinkKey(prefix, 'lead', pair.recordId)))
    return linked !== pair.personId && sandbox.marketo.persons.get(linked)?.title === 'Nuclear Physicist' ? linked : undefined
  }, { timeoutMs: 10_000, what: 'a new person linked to the lead' }))
  t.not(newPersonId, pair.personId, 'a new person id')
  t.equal(sandbox.marketo.persons.list().filter((person) => person.email === 'lise.meitner@example.com').length, 1, 'one person with that email')
})

t.test('a person whose Dynamics lead was deleted gets a new lead when the flow step runs for them again', async (t) => {
  const pair = await linkedLead({ lastname: 'Noether', emailaddress1: 'emmy.noether@example.com' })
  t.ok(sandbox.dataverse.store.delete('leads', pair.recordId), 'the salesperson deletes the lead')
  await eventually(() => sandbox.marketo.persons.get(pair.personId)?.microsoftIsDeleted === true ? true : undefined,
    { timeoutMs: 10_000, what: 'the person\'s deleted flag' })

  await sandbox.marketo.runCampaign(service, { personIds: [pair.personId], kind: 'trigger', flowStepContext: { syncAs: 'Lead' } })
  const newLead = await eventually(() => sandbox.dataverse.store.list('leads').find((row) => row.emailaddress1 === 'emmy.noether@example.com') ?? undefined,
    { timeoutMs: 10_000, what: 'a new lead for the person' })
  t.not(String(newLead.leadid), pair.recordId, 'a new lead, not the deleted one')
  await eventually(() => sandbox.marketo.persons.get(pair.personId)?.microsoftIsDeleted === false ? true : undefined,
    { timeoutMs: 10_000, what: 'the deleted flag cleared once the person follows a live lead' })
  t.equal(sandbox.marketo.persons.list().filter((person) => person.email === 'emmy.noether@example.com').length, 1, 'still one person')
})
