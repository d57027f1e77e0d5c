import t from 'tap'
import { eventually } from '../helpers/flow-step-harness.ts'
import { startBackgroundSyncHarness } from '../helpers/background-sync-harness.ts'
import { CheckpointStore } from '../../src/background-sync/checkpoints.ts'
import { MARKETO_CHECKPOINT } from '../../src/background-sync/marketo-change-pass.ts'
import { AFTER_RESET_MARGIN_MS } from '../../src/background-sync/marketo-poll-pace.ts'
import { MarketoCallBudget, marketoQuotaDay, nextMarketoQuotaReset } from '../../src/marketo/marketo-call-budget.ts'
import { marketoCallBudgetKeys, syncFeedPollPaceKey } from '../../src/queue/redis-keys.ts'

/**
 * The Marketo poll pace in the running worker (issue 12 §11), on a real Redis with real BullMQ job
 * schedulers against the emulated Marketo, whose REST call count is the polls (nothing else calls
 * Marketo while Dynamics is idle). The scheduler ticks every 200 ms (the floor); the budget is sized
 * from the time left until Marketo's reset so that half of it pays for one poll a second until then:
 * the idle pace is 1 s, and a 2 s ceiling leaves room for fast polls.
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
const budget = new MarketoCallBudget(redis, { keyPrefix: prefix, dailyBudget: DAILY_BUDGET })
const checkpoints = new CheckpointStore(redis, prefix)
harness.startWorker()

/** The times (ms) at which the emulator received Marketo calls during `windowMs`: a measurement, not a wait for a condition. */
async function callTimes (windowMs: number): Promise<number[]> {
  const times: number[] = []
  let count = sandbox.marketo.restCallCount()
  const end = Date.now() + windowMs
  while (Date.now() < end) {
    await new Promise((resolve) => setTimeout(resolve, 10))
    const now = sandbox.marketo.restCallCount()
    for (; count < now; count++) times.push(Date.now())
  }
  return times
}

const gaps = (times: number[]) => times.slice(1).map((time, i) => time - times[i]!)
const paceDelay = async () => Number(await redis.hget(paceKey, 'delayMs'))
/** The idle pace: the budget's half spread over the time left, about 1 s (the budget was sized a moment before). */
const atIdlePace = async () => Math.abs(await paceDelay() - IDLE_MS) <= 50 ? true : undefined

/** Our budget's count for today set to `spent`, as the other spenders (the flow step, Dynamics → Marketo) would leave it. */
async function budgetSpent (spent: number): Promise<void> {
  await redis.hset(marketoCallBudgetKeys(prefix).daily, 'day', marketoQuotaDay(Date.now()), 'count', spent)
}

await eventually(async () => (await checkpoints.load(MARKETO_CHECKPOINT)).cursor, { timeoutMs: 10_000, what: 'the first Marketo pass' })

/**
 * Two idle decisions in a row: the sandbox's seeded Dynamics records reach Marketo when the worker
 * starts, and the feed reports those writes once (as changes made through the API).
 */
async function settledAtIdle (): Promise<void> {
  const dueAt = await eventually(async () => await atIdlePace() === true ? await redis.hget(paceKey, 'dueAt') ?? undefined : undefined, { timeoutMs: 10_000, what: 'the idle pace' })
  await eventually(async () => await atIdlePace() === true && await redis.hget(paceKey, 'dueAt') !== dueAt ? true : undefined, { timeoutMs: 5_000, what: 'a second idle decision' })
}

t.test('at idle the feed is read at the idle pace (1 s), not at every 200 ms tick', async (t) => {
  await settledAtIdle()
  const times = await callTimes(4_000)
  t.ok(times.length >= 2 && times.length <= 5, `${times.length} polls in 4 s (20 ticks)`)
  t.ok(gaps(times).every((gap) => gap >= 800), `gaps ${gaps(times).join(', ')} ms`)
})

t.test('after a change the next poll comes at the fast pace, then the pace doubles back to idle', async (t) => {
  const personId = sandbox.marketo.persons.create({ email: 'grace.hopper@example.com', lastName: 'Hopper', title: 'Admiral' })
  const edited = await fetch(`${config.marketo.baseUrl}/_emulator/persons/${personId}`, {
    method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ fields: { title: 'Rear Admiral' } })
  })
  t.equal(edited.status, 200)
  const times = await callTimes(4_000)
  t.ok(gaps(times).some((gap) => gap < 500), `a gap at the fast pace among ${gaps(times).join(', ')} ms`)
  await eventually(atIdlePace, { timeoutMs: 5_000, what: 'the idle pace again' })
  t.pass('back at the idle pace once a pass found nothing')
})

t.test('a nearly spent budget slows polling below the idle pace', async (t) => {
  // A quarter left: its half pays for one poll every 4 s until the reset.
  await budgetSpent(DAILY_BUDGET - Math.round(DAILY_BUDGET / 4))
  await eventually(async () => await paceDelay() >= 3_500 ? true : undefined, { timeoutMs: 5_000, what: 'the pace the budget allows' })
  const times = await callTimes(3_000)
  t.equal(times.length, 0, 'no poll within 3 s of the decision (15 ticks)')
  await budgetSpent(0)
  await eventually(atIdlePace, { timeoutMs: 10_000, what: 'the idle pace once the budget is back' })
})

t.test('a 607 stops polling until a minute after Marketo\'s reset', async (t) => {
  sandbox.marketo.faults.errorNext('607', 'Daily quota reached', 1)
  const resetsAt = nextMarketoQuotaReset(Date.now()).getTime()
  await eventually(async () => Number(await redis.hget(paceKey, 'dueAt')) >= resetsAt ? true : undefined, { timeoutMs: 5_000, what: 'a due time after the reset' })
  t.equal(Number(await redis.hget(paceKey, 'dueAt')), resetsAt + AFTER_RESET_MARGIN_MS)
  t.equal(await budget.remainingToday(), 0, 'the 607 marked the shared budget spent for every process')
  const times = await callTimes(2_000)
  t.equal(times.length, 0, 'no Marketo call in 10 ticks')
})
