import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { freePort, startLocalRedis, type LocalRedis } from '../../sandbox/redis-server.ts'
import { waitUntilReady } from '../../sandbox/wait-until-ready.ts'
import { eventually } from '../helpers/flow-step-harness.ts'
import { type AcceptedInvocation, acceptedOnly, recoveryDeadlineMs, startProcessHarness, testLogsKeepSecrets } from '../helpers/process-harness.ts'

/**
 * Redis (with AOF persistence, as docker-compose runs it) restarts in the middle of a load. While
 * it is away the API refuses invocations at once with a JSON 503 — Marketo retries those — and
 * never answers 201 for work it could not store; the API and the workers reconnect by themselves
 * and every invocation accepted before, during or after the restart is reported.
 *
 * Its deadlines come from the services' configured timings (`recoveryDeadlineMs`), and it waits
 * on what it needs to see, never for a fixed time: on a loaded machine one Dynamics create
 * answered after the client's timeout leaves its email's claim to lapse, which the short claim
 * TTL of the fault tests keeps to seconds.
 */

/** The API refuses while Redis is away instead of queuing (no offline queue): a hang would last until Marketo's 30 s timeout. */
const REFUSAL_DEADLINE_MS = 3_000

const aofDir = await mkdtemp(join(tmpdir(), 'mds-redis-aof-'))
const redisPort = await freePort()
let redis: LocalRedis = await startLocalRedis({ port: redisPort, appendOnlyDir: aofDir })
// Registered before the harness's: tap runs teardowns last-in first-out, so the services stop before their Redis.
t.teardown(async () => {
  await redis.stop()
  await rm(aofDir, { recursive: true, force: true })
})
const h = await startProcessHarness(t, { redisUrl: redis.url, workers: 1, dataverseLatencyMs: 100 })
const { dataverse } = h.sandbox
const ready = `${h.sandbox.publicUrl}/health/ready`

t.test('Redis restarts mid-load: 503 while it is down, nothing accepted is lost', async (t) => {
  const accepted: AcceptedInvocation[] = []
  const ours = (lead: Record<string, unknown>) => String(lead.emailaddress1).startsWith('restart')

  const before = (await Promise.all(Array.from({ length: 6 }, async (_, b) => await h.runCampaign(h.createPersons(20, `restart${b}`))))).flat()
  t.equal(acceptedOnly(before).length, 6, 'the load is accepted')
  accepted.push(...before)
  await eventually(() => dataverse.store.list('leads').filter(ours).length >= 20 || undefined, { timeoutMs: 30_000, what: 'the load to be under way' })

  const logBeforeOutage = h.logText().length
  await redis.stop()
  t.ok(dataverse.store.list('leads').filter(ours).length < 120, 'Redis went away mid-load')
  const stranded = h.createPersons(5, 'restartdown')
  const startedAt = performance.now()
  const [refused] = await h.runCampaign(stranded)
  const answeredInMs = performance.now() - startedAt
  t.equal(refused?.status, 503, 'an invocation while Redis is down is refused')
  t.match(JSON.parse(refused?.body ?? '{}'), { statusCode: 503, code: 'QUEUE_UNAVAILABLE', message: String }, 'with a JSON error')
  t.ok(answeredInMs < REFUSAL_DEADLINE_MS, `at once, not hung (${Math.round(answeredInMs)} ms)`)
  t.equal((await fetch(ready)).status, 503, 'the API says it is not ready')
  // Redis stays down until the worker has found it gone (its once-per-outage line, whatever the first
  // error was: a reset, a closed connection or a refused reconnect): it is in its back-off.
  await eventually(() => /^\[worker-1\] .*redis cannot be reached/m.test(h.logText().slice(logBeforeOutage)) || undefined,
    { timeoutMs: 30_000, intervalMs: 50, what: 'the worker to find Redis gone' })

  redis = await startLocalRedis({ port: redisPort, appendOnlyDir: aofDir })
  await waitUntilReady(ready, { timeoutMs: 15_000 })
  t.pass('the API reconnected by itself')

  // Marketo retries the refused invocation; more work keeps arriving.
  const retried = await h.runCampaign(stranded)
  const after = (await Promise.all(Array.from({ length: 2 }, async (_, b) => await h.runCampaign(h.createPersons(20, `restartafter${b}`))))).flat()
  t.equal(acceptedOnly([...retried, ...after]).length, 3, 'invocations are accepted again')
  accepted.push(...retried, ...after)

  const report = await h.reconcile(accepted, { timeoutMs: recoveryDeadlineMs(h.timings) })
  t.same(report.problems, [], 'every person of every accepted invocation is accounted for')
  t.equal(report.persons, 6 * 20 + 5 + 2 * 20)
  t.equal(report.outcomes.failed, 0, 'nobody failed')
  t.equal(dataverse.store.list('leads').filter(ours).length, report.persons, 'one lead per person, no duplicate')
})

testLogsKeepSecrets(t, h)
