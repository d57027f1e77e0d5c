import t from 'tap'
import { eventually } from '../helpers/flow-step-harness.ts'
import { startBackgroundSyncHarness } from '../helpers/background-sync-harness.ts'
import { SANDBOX_USERS } from '../../sandbox/start-sandbox.ts'
import { CheckpointStore } from '../../src/background-sync/checkpoints.ts'
import { isWatermarkCursor } from '../../src/dynamics/table-watermark-read.ts'

/**
 * Dynamics → Marketo for a leads table whose change tracking is off (issue 12 §1): the worker built
 * by the runtime `npm run worker` uses, with BACKGROUND_SYNC=on, on a real Redis with BullMQ job
 * schedulers, against the emulated Dataverse (leads untracked) and Marketo. The pass switches to a
 * `modifiedon` watermark and leads created and edited still reach Marketo.
 */

const harness = await startBackgroundSyncHarness(t)
const { sandbox, config, redis } = harness
const dana = SANDBOX_USERS.dana.systemuserid
const checkpoints = new CheckpointStore(redis, config.redis.keyPrefix)
const leadCheckpoint = { direction: 'dynamics-to-marketo', table: 'lead' } as const
sandbox.dataverse.changeTracking.setTracked('leads', false)

harness.startWorker()

const personByEmail = (email: string) => sandbox.marketo.persons.findByEmail(email)

let leadId = ''
let marketoId = 0

t.test('change tracking off: a lead created in Dynamics still becomes a Marketo person, read by modifiedon', async (t) => {
  await eventually(async () => {
    const { cursor } = await checkpoints.load(leadCheckpoint)
    return cursor !== undefined && isWatermarkCursor(cursor) ? true : undefined
  }, { timeoutMs: 5_000, what: 'the lead checkpoint on a watermark' })
  leadId = sandbox.dataverse.store.insert('leads', {
    firstname: 'Mary', lastname: 'Jackson', emailaddress1: 'mary.jackson@example.com', jobtitle: 'Engineer', _modifiedby_value: dana
  })
  const person = await eventually(() => personByEmail('mary.jackson@example.com'), { timeoutMs: 5_000, what: 'the person in Marketo' })
  marketoId = person.id as number
  t.match(person, { firstName: 'Mary', lastName: 'Jackson', title: 'Engineer' })
  t.equal(sandbox.marketo.persons.list().filter((p) => p.email === 'mary.jackson@example.com').length, 1, 'one person')
})

t.test('change tracking off: a title edited in Dynamics reaches the person, and only that field is written', async (t) => {
  const before = sandbox.marketo.persons.activities(marketoId).length
  sandbox.dataverse.store.update('leads', leadId, { jobtitle: 'Aerospace Engineer', _modifiedby_value: dana })
  await eventually(() => personByEmail('mary.jackson@example.com')?.title === 'Aerospace Engineer' ? true : undefined, { timeoutMs: 5_000, what: 'the new title' })
  const changes = sandbox.marketo.persons.activities(marketoId).slice(before)
  t.same(changes.flatMap((activity) => (activity as { fields?: Array<{ name: string }> }).fields?.map((field) => field.name) ?? []), ['title'], 'one Change Data Value, for the title')
})

t.test('the recent lead read again while inside the overlap costs no Marketo call', async (t) => {
  const calls = sandbox.marketo.restCallCount()
  const { version } = await checkpoints.load(leadCheckpoint)
  await eventually(async () => (await checkpoints.load(leadCheckpoint)).version >= version + 2 ? true : undefined, { timeoutMs: 5_000, what: 'two more lead passes' })
  t.equal(sandbox.marketo.restCallCount(), calls, 'the same row again equals its last-synced state: skipped before any call')
  t.equal(sandbox.marketo.persons.list().filter((p) => p.email === 'mary.jackson@example.com').length, 1, 'still one person')
})
