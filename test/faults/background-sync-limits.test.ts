import t from 'tap'
import { eventually } from '../helpers/flow-step-harness.ts'
import { LEAD_CHECKPOINT, startBackgroundSyncProcesses } from '../helpers/background-sync-processes.ts'
import { MARKETO_CHECKPOINT } from '../../src/background-sync/marketo-change-pass.ts'
import { marketoCallBudgetKeys, syncFeedPollPaceKey } from '../../src/queue/redis-keys.ts'

/**
 * Marketo's and Dataverse's limits met by the running background sync (issue 12 §11, §13):
 * a 606 (100 calls per 20 s spent by the customer's other integrations) is waited out and the
 * call repeated; a Dataverse 429 is waited out for its Retry-After; a 607 (the instance's daily
 * quota spent) stops every process calling Marketo until Marketo's daily reset. Each wait is in
 * the worker's logs with its reason; the changes arrive once the limit clears, each once.
 */

const sync = await startBackgroundSyncProcesses(t)
const { h, checkpoints } = sync
const { dataverse, marketo } = h.sandbox

/** The worker's log lines, parsed. */
function workerLogs (): Array<Record<string, unknown>> {
  return h.logText().split('\n')
    .filter((line) => line.startsWith('[worker-'))
    .map((line) => { try { return JSON.parse(line.slice(line.indexOf(' ') + 1)) as Record<string, unknown> } catch { return {} } })
}

const titleWritesTo = (leadId: string) => (sync.serviceLeadWrites().get(leadId) ?? []).filter((changes) => Object.hasOwn(changes, 'jobtitle')).map((changes) => changes.jobtitle)

let linked = { leadId: '', personId: 0 }

t.test('given a lead linked to its person and the Marketo feed running', async () => {
  const [leadId] = sync.seedLeads(1, 'linked')
  linked = { leadId: leadId!, personId: await sync.linkedPerson(leadId!) }
  await sync.marketoFeedStarted()
})

t.test('Marketo answers 606 (rate limit): the worker waits, says why, and the new leads still arrive, once each', async (t) => {
  marketo.faults.rateLimitNext(3)
  sync.seedLeads(5, 'rated')
  await eventually(() => sync.personsByEmail('rated').size === 5 || undefined, { timeoutMs: 30_000, intervalMs: 100, what: 'the leads in Marketo' })
  t.same([...sync.personsByEmail('rated').values()], [1, 1, 1, 1, 1], 'one person each')
  const waits = workerLogs().filter((entry) => entry.code === '606' && /rate or concurrency limit/.test(String(entry.msg)))
  t.equal(waits.length, 3, 'each 606 logged as a wait, with Marketo\'s code')
  t.ok(waits.every((entry) => typeof entry.waitMs === 'number' && entry.waitMs > 0), 'with how long it waited')
})

t.test('Dataverse answers 429 with Retry-After: the worker waits that long, says why, and the Marketo edit arrives once', async (t) => {
  dataverse.faults.throttleNext(3, 1)
  await sync.editInMarketo(linked.personId, { title: 'Throttled Title' })
  await eventually(() => dataverse.store.get('leads', linked.leadId)?.jobtitle === 'Throttled Title' || undefined, { timeoutMs: 30_000, intervalMs: 100, what: 'the edit in Dynamics' })
  t.equal(dataverse.faults.state().throttle.count, 0, 'every throttled answer was met')
  const waits = workerLogs().filter((entry) => entry.msg === 'dataverse request retried' && typeof entry.throttled === 'number' && entry.throttled > 0)
  t.equal(waits.length, 3, 'each 429 logged as a wait')
  t.ok(waits.every((entry) => entry.waitMs === 1_000), 'for the Retry-After Dataverse gave (1 s)')
  await sync.passesLater(MARKETO_CHECKPOINT, 2)
  t.same(titleWritesTo(linked.leadId), ['Throttled Title'], 'written once')
})

t.test('Marketo answers 607 (daily quota spent): the worker stops calling Marketo until the reset, loses nothing, and says why', async (t) => {
  // The instance's quota is spent from the next call on, for every integration.
  marketo.limits.configure({ dailyQuota: marketo.limits.usage().callsToday })
  const [quotaLead] = sync.seedLeads(1, 'quota')
  await sync.editInMarketo(linked.personId, { title: 'After The Reset' })
  await eventually(() => workerLogs().some((entry) => (entry.err as { code?: string } | undefined)?.code === '607') || undefined, { timeoutMs: 15_000, intervalMs: 50, what: 'a pass to meet the 607' })
  // Passes go on being scheduled, and each ends before calling Marketo: the budget is marked spent.
  const spent = () => workerLogs().filter((entry) => (entry.err as { code?: string } | undefined)?.code === 'MARKETO_BUDGET_SPENT').length
  // Counted from the second such pass on: a call admitted just before the 607 may still have been on its way.
  await eventually(() => spent() >= 2 || undefined, { timeoutMs: 15_000, intervalMs: 50, what: 'passes to stop at the spent budget' })
  const leadCheckpoint = await checkpoints.load(LEAD_CHECKPOINT)
  const marketoCheckpoint = await checkpoints.load(MARKETO_CHECKPOINT)
  const callsAfter607 = marketo.restCallCount()
  const spentBefore = spent()
  await eventually(() => spent() >= spentBefore + 10 || undefined, { timeoutMs: 15_000, intervalMs: 50, what: 'ten more passes to stop at the spent budget' })
  t.equal(marketo.restCallCount(), callsAfter607, 'no Marketo call after the 607, over ten passes')
  t.equal(sync.personsByEmail('quota').size, 0, 'the new lead waits')
  t.match(await checkpoints.load(LEAD_CHECKPOINT), { version: leadCheckpoint.version, cursor: leadCheckpoint.cursor }, 'the lead checkpoint holds: its page is not skipped')
  t.match(await checkpoints.load(MARKETO_CHECKPOINT), { version: marketoCheckpoint.version, cursor: marketoCheckpoint.cursor }, 'the Marketo checkpoint holds')
  t.equal(dataverse.store.get('leads', linked.leadId)?.jobtitle, 'Throttled Title', 'the edit waits')

  // Marketo's daily reset at 12:00 AM CST cannot be waited for: it is stood in for by a new quota
  // day on both sides, the emulator's counters and our budget's daily count in Redis.
  marketo.limits.configure({ dailyQuota: 50_000 })
  marketo.limits.resetCounters()
  await sync.redis.del(marketoCallBudgetKeys(sync.prefix).daily)
  // After a 607 the feed's next poll is planned for a minute after the reset: a new day plans again.
  await sync.redis.del(syncFeedPollPaceKey(sync.prefix, MARKETO_CHECKPOINT.direction, MARKETO_CHECKPOINT.table))
  await eventually(() => sync.personsByEmail('quota').size === 1 || undefined, { timeoutMs: 30_000, intervalMs: 100, what: 'the lead in Marketo after the reset' })
  await eventually(() => dataverse.store.get('leads', linked.leadId)?.jobtitle === 'After The Reset' || undefined, { timeoutMs: 30_000, intervalMs: 100, what: 'the edit in Dynamics after the reset' })
  t.equal(String(marketo.persons.get(await sync.linkedPerson(quotaLead!))?.email), 'quota.0@example.com', 'the waiting lead became its person')
  await sync.passesLater(MARKETO_CHECKPOINT, 2)
  t.same(titleWritesTo(linked.leadId), ['Throttled Title', 'After The Reset'], 'the waiting edit written once')
})

t.test('the logs hold no secret, token, API key or email address', async (t) => {
  t.same(h.leaksInLogs(), [])
})
