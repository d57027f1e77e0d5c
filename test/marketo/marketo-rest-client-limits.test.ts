import t from 'tap'
import { Redis } from 'ioredis'
import pino from 'pino'
import { startMarketoEmulator, type RestLimitSettings } from '../../sandbox/marketo/index.ts'
import { startLocalRedis } from '../../sandbox/redis-server.ts'
import { MarketoCallBudget, nextMarketoQuotaReset, type MarketoCallBudgetOptions } from '../../src/marketo/marketo-call-budget.ts'
import {
  MarketoApiError,
  MarketoBudgetSpentError,
  MarketoBudgetWaitTimeoutError,
  MarketoQuotaExhaustedError
} from '../../src/marketo/marketo-errors.ts'
import { MarketoRestClient, type MarketoRestClientOptions } from '../../src/marketo/marketo-rest-client.ts'

/**
 * The Marketo REST client against an emulated instance that enforces Marketo's limits (606 rate,
 * 615 concurrency, 607 daily quota), with and without our shared call budget in a real Redis.
 */

const redisServer = await startLocalRedis()
const connections: Redis[] = []
t.teardown(async () => {
  for (const connection of connections) connection.disconnect()
  await redisServer.stop()
})

let prefixes = 0
function budgetsForTwoProcesses (options: Omit<MarketoCallBudgetOptions, 'keyPrefix'>): [MarketoCallBudget, MarketoCallBudget] {
  const keyPrefix = `client-budget-${++prefixes}`
  return [0, 1].map(() => {
    const connection = new Redis(redisServer.url)
    connections.push(connection)
    return new MarketoCallBudget(connection, { keyPrefix, ...options })
  }) as [MarketoCallBudget, MarketoCallBudget]
}

async function marketoInstance (t: { teardown: (fn: () => Promise<void>) => void }, limits: Partial<RestLimitSettings>) {
  const emulator = await startMarketoEmulator({ munchkinId: '123-ABC-456', clients: [{ clientId: 'cid', clientSecret: 'secret' }], limits })
  t.teardown(async () => { await emulator.close() })
  const personId = emulator.persons.create({ email: 'budget@example.com' })
  const client = (options: Partial<MarketoRestClientOptions> = {}) => new MarketoRestClient({ baseUrl: emulator.url, clientId: 'cid', clientSecret: 'secret', ...options })
  return { emulator, personId, client }
}

t.test('a 606 from Marketo is waited out and the call repeated, a bounded number of times', async (t) => {
  const { emulator, personId, client } = await marketoInstance(t, {})
  const patient = client({ rateLimitRetries: 2, rateLimitBackoffMs: 10 })
  emulator.faults.rateLimitNext(2)
  const callsBefore = emulator.restCallCount()
  t.match(await patient.getLeadsByIds([personId], ['email']), [{ id: personId, email: 'budget@example.com' }])
  t.equal(emulator.restCallCount() - callsBefore, 3, 'refused twice, answered the third time')

  emulator.faults.rateLimitNext(3)
  const error = await patient.getLeadsByIds([personId], ['email']).catch((e: unknown) => e)
  t.type(error, MarketoApiError, 'still refused after the retries: the typed error')
  t.match(error, { code: '606' })
})

t.test('Marketo\'s own concurrency limit (615) is waited out and the call repeated', async (t) => {
  const { emulator, personId, client } = await marketoInstance(t, { maxConcurrent: 1 })
  emulator.faults.setLatency(200)
  const patient = client({ rateLimitRetries: 5, rateLimitBackoffMs: 50 })
  await patient.getLeadsByIds([personId], ['email']) // the token, so both calls below go out at once
  const callsBefore = emulator.restCallCount()
  const answers = await Promise.all([patient.getLeadsByIds([personId], ['email']), patient.getLeadsByIds([personId], ['email'])])
  t.same(answers.map((leads) => leads.map((lead) => lead.id)), [[personId], [personId]], 'both answered')
  t.ok(emulator.restCallCount() - callsBefore >= 3, 'one was refused with 615 and repeated')
})

t.test('with the shared budget, two processes never meet Marketo\'s 606 or 615, and stop at their window', async (t) => {
  const { emulator, personId, client } = await marketoInstance(t, { callsPerWindow: 10, windowMs: 60_000, maxConcurrent: 2 })
  emulator.faults.setLatency(30)
  const budgetOptions = { callsPerWindow: 8, windowMs: 60_000, maxConcurrent: 2, maxWaitMs: 1_000, minPollMs: 5, maxPollMs: 50 }
  const budgets = budgetsForTwoProcesses(budgetOptions)
  // No 606/615 retries: any refusal by Marketo would surface as a MarketoApiError.
  const processes = budgets.map((callBudget) => client({ callBudget }))
  const outcomes = await Promise.all(Array.from({ length: 12 }, async (_, i) => {
    try {
      await processes[i % 2]!.getLeadsByIds([personId], ['email'])
      return 'answered'
    } catch (error) {
      return error instanceof MarketoBudgetWaitTimeoutError ? error.code : `${(error as MarketoApiError).code}: ${(error as Error).message}`
    }
  }))
  t.equal(outcomes.filter((o) => o === 'answered').length, 8, 'the budget\'s window, not Marketo\'s')
  t.equal(outcomes.filter((o) => o === 'MARKETO_BUDGET_WAIT_TIMEOUT').length, 4, `the rest were held back: ${outcomes.join(', ')}`)
  t.equal(emulator.restCallCount(), 8, 'a held-back call never reaches Marketo')
  t.match(emulator.limits.usage(), { callsInWindow: 8, inFlight: 0 })
})

t.test('607 is a typed error with Marketo\'s reset time, and stops every process until then', async (t) => {
  const { emulator, personId, client } = await marketoInstance(t, { dailyQuota: 1 })
  const [first, second] = budgetsForTwoProcesses({ dailyBudget: 100 })
  const firstProcess = client({ callBudget: first, rateLimitRetries: 3, rateLimitBackoffMs: 10 })
  await firstProcess.getLeadsByIds([personId], ['email'])
  t.equal(await first.remainingToday(), 99, 'one call charged: the identity call is not (reference §2.1)')

  const error = await firstProcess.getLeadsByIds([personId], ['email']).catch((e: unknown) => e)
  t.type(error, MarketoQuotaExhaustedError)
  t.type(error, MarketoApiError, 'still a Marketo error with Marketo\'s code')
  t.match(error, { code: '607', message: 'Daily quota reached' })
  t.equal((error as MarketoQuotaExhaustedError).resetsAt.toISOString(), nextMarketoQuotaReset(Date.now()).toISOString())

  t.equal(await second.remainingToday(), 0, 'the other process sees nothing left today')
  const callsBefore = emulator.restCallCount()
  const refused = await client({ callBudget: second }).getLeadsByIds([personId], ['email']).catch((e: unknown) => e)
  t.type(refused, MarketoBudgetSpentError)
  t.match(refused, { code: 'MARKETO_BUDGET_SPENT' })
  t.equal(emulator.restCallCount(), callsBefore, 'and asks Marketo nothing')
})

t.test('each wait for a 606 is logged with Marketo\'s code, the retry and the wait, and nothing of the call', async (t) => {
  const { emulator, personId, client } = await marketoInstance(t, {})
  const lines: string[] = []
  const logger = pino({ level: 'warn' }, { write: (line: string) => { lines.push(line) } })
  const patient = client({ rateLimitRetries: 2, rateLimitBackoffMs: 10, logger })
  emulator.faults.rateLimitNext(2)
  await patient.getLeadsByIds([personId], ['email'])
  const warnings = lines.map((line) => JSON.parse(line) as Record<string, unknown>)
  t.match(warnings, [
    { code: '606', retry: 1, waitMs: Number, msg: /rate or concurrency limit/ },
    { code: '606', retry: 2, waitMs: Number, msg: /rate or concurrency limit/ }
  ])
  t.equal(warnings.length, 2)
  t.notOk(lines.join('').includes('budget@example.com'), 'no person data')
})
