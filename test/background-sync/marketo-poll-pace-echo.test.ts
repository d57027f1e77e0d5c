import t from 'tap'
import { eventually } from '../helpers/flow-step-harness.ts'
import { startBackgroundSyncHarness } from '../helpers/background-sync-harness.ts'
import { SANDBOX_USERS } from '../../sandbox/start-sandbox.ts'
import { CheckpointStore } from '../../src/background-sync/checkpoints.ts'
import { MARKETO_CHECKPOINT } from '../../src/background-sync/marketo-change-pass.ts'
import { nextMarketoQuotaReset } from '../../src/marketo/marketo-call-budget.ts'
import { recordLinkKey, syncFeedPollPaceKey } from '../../src/queue/redis-keys.ts'

/**
 * Our own writes do not speed the Marketo poll pace up (issue 12 §6, §11): a Dynamics edit synced
 * to Marketo comes back in Marketo's lead-change feed as a change made through the API, at the
 * value the pair's last-synced state holds, and the pass that reads it decides the idle pace, not
 * the fast one. Measured as marketo-poll-pace-worker.test.ts does: a real Redis and BullMQ job
 * scheduler ticking every 200 ms, the emulated Marketo counting REST calls (the polls, once the
 * Dynamics → Marketo write has landed), a budget sized so the idle pace is 1 s.
 */

const FLOOR_MS = 200
const CEILING_MS = 2_000
const IDLE_MS = 1_000
const msUntilReset = nextMarketoQuotaReset(Date.now()).getTime() - Date.now()
const DAILY_BUDGET = Math.max(10, Math.round(2 * msUntilReset / IDLE_MS))

const harness = await startBackgroundSyncHarness(t, {
  SYNC_MARKETO_POLL_INTERVAL_MS: String(FLOOR_MS),
  SYNC_MARKETO_POLL_MAX_INTERVAL_MS: String(CEILING_MS),
  MARKETO_DAILY_CALL_BUDGET: String(DAILY_BUDGET)
})
const { sandbox, config, redis } = harness
const prefix = config.redis.keyPrefix
const paceKey = syncFeedPollPaceKey(prefix, MARKETO_CHECKPOINT.direction, MARKETO_CHECKPOINT.table)
const checkpoints = new CheckpointStore(redis, prefix)
const dana = SANDBOX_USERS.dana.systemuserid
harness.startWorker()

/** The times (ms) at which the emulator received Marketo calls during `windowMs`: a measurement, not a wait for a condition. */
async function callTimes (windowMs: number, meanwhile: () => Promise<void>): Promise<number[]> {
  const times: number[] = []
  let count = sandbox.marketo.restCallCount()
  const end = Date.now() + windowMs
  while (Date.now() < end) {
    await new Promise((resolve) => setTimeout(resolve, 10))
    const now = sandbox.marketo.restCallCount()
    for (; count < now; count++) times.push(Date.now())
    await meanwhile()
  }
  return times
}

const gaps = (times: number[]) => times.slice(1).map((time, i) => time - times[i]!)
const paceDelay = async () => Number(await redis.hget(paceKey, 'delayMs'))
const atIdlePace = async () => Math.abs(await paceDelay() - IDLE_MS) <= 50 ? true : undefined

async function settledAtIdle (): Promise<void> {
  const dueAt = await eventually(async () => await atIdlePace() === true ? await redis.hget(paceKey, 'dueAt') ?? undefined : undefined, { timeoutMs: 10_000, what: 'the idle pace' })
  await eventually(async () => await atIdlePace() === true && await redis.hget(paceKey, 'dueAt') !== dueAt ? true : undefined, { timeoutMs: 5_000, what: 'a second idle decision' })
}

await eventually(async () => (await checkpoints.load(MARKETO_CHECKPOINT)).cursor, { timeoutMs: 10_000, what: 'the first Marketo pass' })
let hopper: number | undefined

t.test('a Dynamics edit synced to Marketo does not make the next Marketo polls fast', async (t) => {
  const recordId = sandbox.dataverse.store.insert('leads', { lastname: 'Hopper', emailaddress1: 'grace.hopper@example.com', jobtitle: 'Admiral', _modifiedby_value: dana })
  const personId = Number(await eventually(async () => await redis.get(recordLinkKey(prefix, 'lead', recordId)) ?? undefined, { timeoutMs: 5_000, what: 'the lead\'s link' }))
  await eventually(() => sandbox.marketo.persons.get(personId)?.title === 'Admiral' ? true : undefined, { what: 'the person' })
  hopper = personId
  await settledAtIdle()

  const before = (await checkpoints.load(MARKETO_CHECKPOINT)).cursor
  sandbox.dataverse.store.update('leads', recordId, { jobtitle: 'Rear Admiral', _modifiedby_value: dana })
  await eventually(() => sandbox.marketo.persons.get(personId)?.title === 'Rear Admiral' ? true : undefined, { timeoutMs: 5_000, what: 'the edit in Marketo' })

  // From here on the only Marketo calls are the polls; one of them reads the edit back.
  let echoReadAt: number | undefined
  const times = await callTimes(4_000, async () => {
    if (echoReadAt === undefined && (await checkpoints.load(MARKETO_CHECKPOINT)).cursor !== before) echoReadAt = Date.now()
  })
  t.ok(echoReadAt !== undefined, 'a pass read the edit back from the feed (its paging token moved)')
  t.ok(gaps(times).every((gap) => gap >= 800), `no fast poll: gaps ${gaps(times).join(', ')} ms`)
  t.ok(await atIdlePace(), `the pace stays idle (${await paceDelay()} ms)`)
})

t.test('a marketer\'s edit of that person still brings fast polls', async (t) => {
  const personId = hopper
  t.ok(personId !== undefined, 'the person of the test above')
  await settledAtIdle()
  const edited = await fetch(`${config.marketo.baseUrl}/_emulator/persons/${String(personId)}`, {
    method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ fields: { title: 'Commodore' } })
  })
  t.equal(edited.status, 200)
  const times = await callTimes(4_000, async () => {})
  t.ok(gaps(times).some((gap) => gap < 500), `a gap at the fast pace among ${gaps(times).join(', ')} ms`)
})
