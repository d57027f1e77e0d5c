import t from 'tap'
import { Redis } from 'ioredis'
import { acceptedOnly, startProcessHarness, testLogsKeepSecrets } from '../helpers/process-harness.ts'
import { emailClaimKeys } from '../../src/queue/redis-keys.ts'

/**
 * Dynamics is unavailable in the three ways Dataverse fails in production: server errors for a
 * stretch, a storm of service-protection 429s with Retry-After, and answers slower than the
 * client's timeout. The backlog drains once Dynamics is back, and a create whose answer never
 * came is settled by looking the person up again — never by creating a second time.
 */

const REQUEST_TIMEOUT_MS = 1_000
const h = await startProcessHarness(t, { workers: 1, env: { DYNAMICS_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS) } })
const { dataverse } = h.sandbox
const leadsOf = (label: string) => dataverse.store.list('leads').filter((lead) => String(lead.emailaddress1).startsWith(`${label}`))

async function runLoad (label: string, campaigns: number, persons: number) {
  const invocations = (await Promise.all(Array.from({ length: campaigns }, async (_, b) => await h.runCampaign(h.createPersons(persons, `${label}${b}`))))).flat()
  if (acceptedOnly(invocations).length !== campaigns) throw new Error(`not every invocation was accepted: ${invocations.map((i) => i.status).join(',')}`)
  return invocations
}

t.test('Dynamics answers 503 for a stretch, then recovers: the backlog drains', async (t) => {
  dataverse.faults.failNext(40, 503)
  const invocations = await runLoad('outage', 3, 10)
  const report = await h.reconcile(invocations, { timeoutMs: 45_000 })
  t.equal(dataverse.faults.state().fail.count, 0, 'the outage was lived through')
  t.same(report.problems, [], 'every person is accounted for')
  t.same(report.outcomes, { created: 30, existed: 0, failed: 0 })
  t.equal(leadsOf('outage').length, 30, 'one lead per person')
  t.ok(h.logText().includes('"job failed; will retry"'), 'jobs were retried with backoff')
})

t.test('a 429 storm with Retry-After: the workers wait as told and the backlog drains', async (t) => {
  dataverse.faults.throttleNext(30, 1)
  const invocations = await runLoad('throttled', 3, 10)
  const report = await h.reconcile(invocations, { timeoutMs: 45_000 })
  t.equal(dataverse.faults.state().throttle.count, 0, 'the storm was lived through')
  t.same(report.problems, [], 'every person is accounted for')
  t.same(report.outcomes, { created: 30, existed: 0, failed: 0 })
  t.equal(leadsOf('throttled').length, 30, 'one lead per person')
  t.ok(h.logText().split('\n').some((line) => line.includes('"dataverse request retried"') && line.includes('"waitMs":1000')), 'Retry-After was honoured')
})

t.test('creates answered after the client\'s timeout: the outcome is decided by looking up again, no duplicate', async (t) => {
  const postsBefore = dataverse.requestCount({ method: 'POST', entitySet: 'leads' })
  // Dynamics writes the lead, then answers 2.5 s later: the worker has given up after 1 s.
  dataverse.faults.delayResponsesAfterCommit(5, REQUEST_TIMEOUT_MS * 2.5)
  const invocations = await runLoad('slow', 1, 10)
  const report = await h.reconcile(invocations, { timeoutMs: 45_000 })
  t.equal(dataverse.faults.state().delayAfterCommit.count, 0, 'five creates timed out')
  t.ok(h.logText().includes('"creating a Dynamics record did not complete"'), 'the worker saw the creates time out')
  t.same(report.problems, [], 'every person is accounted for')
  t.same(report.outcomes, { created: 10, existed: 0, failed: 0 }, 'a timed-out create found on the look-up is reported created')
  t.equal(leadsOf('slow').length, 10, 'one lead per person')
  t.equal(dataverse.requestCount({ method: 'POST', entitySet: 'leads' }) - postsBefore, 10, 'no create was sent twice')
  const redis = new Redis(h.sandbox.redis.url)
  t.teardown(() => { redis.disconnect() })
  t.same(await redis.keys(emailClaimKeys('mds', '*').claim), [], 'the claims kept over the timeouts are released once the persons are decided')
})

testLogsKeepSecrets(t, h)
