import t from 'tap'
import { setTimeout as delay } from 'node:timers/promises'
import { Redis } from 'ioredis'
import { startLocalRedis } from '../../sandbox/redis-server.ts'
import {
  MarketoCallBudget,
  budgetPollDelay,
  marketoQuotaDay,
  nextMarketoQuotaReset,
  type MarketoCallBudgetOptions
} from '../../src/marketo/marketo-call-budget.ts'
import { MarketoBudgetSpentError, MarketoBudgetWaitTimeoutError } from '../../src/marketo/marketo-errors.ts'
import { marketoCallBudgetKeys } from '../../src/queue/redis-keys.ts'

/**
 * The Marketo call budget on a real Redis, with two budgets on two connections standing for two
 * processes of ours sharing one Marketo instance.
 */

const redisServer = await startLocalRedis()
const connections: Redis[] = []
t.teardown(async () => {
  for (const connection of connections) connection.disconnect()
  await redisServer.stop()
})

function connect (): Redis {
  const connection = new Redis(redisServer.url)
  connections.push(connection)
  return connection
}

let prefixes = 0
/** Two "processes": separate connections, same key prefix. */
function twoProcesses (options: Omit<MarketoCallBudgetOptions, 'keyPrefix'>): [MarketoCallBudget, MarketoCallBudget, string] {
  const keyPrefix = `budget-${++prefixes}`
  return [new MarketoCallBudget(connect(), { keyPrefix, ...options }), new MarketoCallBudget(connect(), { keyPrefix, ...options }), keyPrefix]
}

t.test('Marketo\'s day runs from midnight CST to midnight CST: 06:00 UTC all year', async (t) => {
  const lastMomentOfADay = Date.parse('2026-07-01T05:59:59.999Z')
  t.equal(marketoQuotaDay(lastMomentOfADay + 1), marketoQuotaDay(lastMomentOfADay) + 1)
  t.equal(nextMarketoQuotaReset(lastMomentOfADay).toISOString(), '2026-07-01T06:00:00.000Z')
  t.equal(nextMarketoQuotaReset(Date.parse('2026-01-15T06:00:00Z')).toISOString(), '2026-01-16T06:00:00.000Z', 'a reset moment belongs to the new day')
})

t.test('waiting backs off exponentially, never past the moment a window slot frees, with jitter', async (t) => {
  const bounds = { minPollMs: 10, maxPollMs: 400 }
  t.equal(budgetPollDelay(0, undefined, bounds, () => 1), 10)
  t.equal(budgetPollDelay(3, undefined, bounds, () => 1), 80)
  t.equal(budgetPollDelay(30, undefined, bounds, () => 1), 400, 'capped')
  t.equal(budgetPollDelay(30, 37, bounds, () => 1), 37, 'no longer than until the oldest call leaves the window')
  t.equal(budgetPollDelay(3, undefined, bounds, () => 0), 40, 'jitter takes up to half off')
})

t.test('two processes together never admit more calls in a window than the budget', async (t) => {
  // A window far longer than the test: no call leaves it, so exactly the budget gets through.
  const [first, second] = twoProcesses({ callsPerWindow: 10, windowMs: 60_000, maxConcurrent: 100, maxWaitMs: 200, minPollMs: 5, maxPollMs: 20 })
  const outcomes = await Promise.all(Array.from({ length: 30 }, async (_, i) => {
    try {
      const slot = await (i % 2 === 0 ? first : second).acquire()
      await slot.release()
      return 'admitted'
    } catch (error) {
      return error instanceof MarketoBudgetWaitTimeoutError ? `${error.code}:${error.limit}` : String(error)
    }
  }))
  t.equal(outcomes.filter((o) => o === 'admitted').length, 10)
  t.equal(outcomes.filter((o) => o === 'MARKETO_BUDGET_WAIT_TIMEOUT:window').length, 20, 'the rest waited, then gave up with a code')
})

t.test('a full window lets the next call through once its oldest call leaves it', async (t) => {
  const [first, second] = twoProcesses({ callsPerWindow: 2, windowMs: 300, maxConcurrent: 100, maxWaitMs: 5_000, minPollMs: 5, maxPollMs: 50 })
  // Taken before the first call is admitted, so no earlier than that admission (Redis's clock is this machine's).
  const startedAt = Date.now()
  for (const budget of [first, second, first]) await (await budget.acquire()).release()
  const waited = Date.now() - startedAt
  t.ok(waited >= 299, `the third call waited for the first to leave the window (${waited} ms)`)
})

t.test('two processes together never have more calls in flight than the budget', async (t) => {
  const [first, second] = twoProcesses({ callsPerWindow: 1_000, maxConcurrent: 3, maxWaitMs: 10_000, minPollMs: 2, maxPollMs: 10 })
  let inFlight = 0
  let mostInFlight = 0
  await Promise.all(Array.from({ length: 24 }, async (_, i) => {
    const slot = await (i % 2 === 0 ? first : second).acquire()
    inFlight++
    mostInFlight = Math.max(mostInFlight, inFlight)
    await delay(5) // the call to Marketo
    inFlight--
    await slot.release()
  }))
  t.equal(mostInFlight, 3, 'as many at once as allowed, never more')
})

t.test('a process that dies holding a slot gives it back when its lease runs out', async (t) => {
  const keyPrefix = `budget-${++prefixes}`
  const doomedConnection = connect()
  const doomed = new MarketoCallBudget(doomedConnection, { keyPrefix, maxConcurrent: 1, leaseMs: 300 })
  const survivor = new MarketoCallBudget(connect(), { keyPrefix, maxConcurrent: 1, leaseMs: 300, maxWaitMs: 5_000, minPollMs: 5, maxPollMs: 25 })
  const beforeLease = Date.now()
  await doomed.acquire()
  doomedConnection.disconnect() // dies mid-call: it neither renews nor releases
  const slot = await survivor.acquire()
  t.ok(Date.now() - beforeLease >= 299, 'not before the lease ran out')
  await slot.release()
})

t.test('a live call keeps its slot past its lease: the lease is renewed while it runs', async (t) => {
  // Leases of 400 ms, renewed a few times within each: long enough that a busy CI machine's event-loop
  // stalls do not let a live lease lapse, short enough that the wait spans four of them.
  const [holder, other] = twoProcesses({ maxConcurrent: 1, leaseMs: 400, maxWaitMs: 1_700, minPollMs: 5, maxPollMs: 20 })
  const slot = await holder.acquire()
  await t.rejects(other.acquire(), { code: 'MARKETO_BUDGET_WAIT_TIMEOUT', limit: 'concurrency' }, 'held for 4 leases and more')
  await slot.release()
  await (await other.acquire()).release()
})

t.test('the daily budget stops calls with a typed error naming the reset, for every process', async (t) => {
  const [first, second, keyPrefix] = twoProcesses({ dailyBudget: 3 })
  t.equal(await first.remainingToday(), 3)
  await (await first.acquire()).release()
  await (await second.acquire()).release()
  t.equal(await second.remainingToday(), 1)
  await (await first.acquire()).release()
  t.equal(await first.remainingToday(), 0)
  const error = await second.acquire().catch((e: unknown) => e)
  t.type(error, MarketoBudgetSpentError)
  t.match(error, { code: 'MARKETO_BUDGET_SPENT', dailyBudget: 3 })
  t.equal((error as MarketoBudgetSpentError).resetsAt.toISOString(), nextMarketoQuotaReset(Date.now()).toISOString())
  const leases = await connect().zcard(marketoCallBudgetKeys(keyPrefix).leases)
  t.equal(leases, 0, 'a refused call holds no slot')
})

t.test('yesterday\'s count does not spend today\'s budget', async (t) => {
  const [budget, , keyPrefix] = twoProcesses({ dailyBudget: 3 })
  const yesterday = marketoQuotaDay(Date.now()) - 1
  await connect().hset(marketoCallBudgetKeys(keyPrefix).daily, 'day', yesterday, 'count', 3)
  t.equal(await budget.remainingToday(), 3)
  await (await budget.acquire()).release()
  t.equal(await budget.remainingToday(), 2)
})

t.test('Marketo saying its quota is spent spends ours for the rest of the day', async (t) => {
  const [first, second] = twoProcesses({ dailyBudget: 100 })
  await first.markSpentUntilReset()
  t.equal(await second.remainingToday(), 0)
  await t.rejects(second.acquire(), MarketoBudgetSpentError)
})
