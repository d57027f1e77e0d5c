import t from 'tap'
import { Queue } from 'bullmq'
import pino from 'pino'
import { Registry } from 'prom-client'
import { startLocalRedis, freePort } from '../../sandbox/redis-server.ts'
import { createApiRedisConnection, createWorkerRedisConnection } from '../../src/queue/connections.ts'
import { QUEUE } from '../../src/queue/names.ts'
import { parkedChangeKeys, queuePrefix } from '../../src/queue/redis-keys.ts'
import { flowStepIntakeKeys } from '../../src/queue/flow-step-intake.ts'
import { MarketoCallBudget } from '../../src/marketo/marketo-call-budget.ts'
import { createServiceMetrics } from '../../src/metrics/service-metrics.ts'
import { MetricsLeader } from '../../src/metrics/metrics-leader.ts'
import { ClusterGauges } from '../../src/metrics/cluster-gauges.ts'
import { SyncProgress } from '../../src/metrics/sync-progress.ts'
import { metricsExposition } from '../../src/metrics/metrics-exposition.ts'
import { cachedCheck } from '../../src/metrics/readiness.ts'
import { buildOpsServer } from '../../src/runtime/ops-server.ts'
import { createMsalAccessTokenProvider } from '../../src/dynamics/access-token-provider.ts'
import { DataverseClient } from '../../src/dynamics/dataverse-client.ts'
import { eventually } from '../helpers/flow-step-harness.ts'

/**
 * Two worker processes' ops servers on one real Redis, scraped over real HTTP: the cluster-wide
 * gauges appear in exactly one scrape and equal what Redis holds; when that process goes, the
 * other takes them over. And `/health/ready` names each dependency, answering 503 naming the one
 * that failed.
 */

const logger = pino({ level: 'silent' })
const LEASE_TTL_MS = 1_500

async function startProcess (t: { teardown (fn: () => Promise<void> | void): void }, redisUrl: string, prefix: string) {
  const connection = createWorkerRedisConnection(redisUrl, 'test-metrics')
  const registry = new Registry()
  const metrics = createServiceMetrics(registry, 'worker')
  const leader = new MetricsLeader(connection, prefix, { ttlMs: LEASE_TTL_MS })
  const gauges = new ClusterGauges({ redis: connection, keyPrefix: prefix, leader, dailyCallBudget: 100 })
  const ops = await buildOpsServer({ logger, exposition: metricsExposition(registry, gauges), health: { redis: connection } })
  const url = await ops.listen({ host: '127.0.0.1', port: 0 })
  leader.start()
  let closed = false
  const close = async () => {
    if (closed) return
    closed = true
    await leader.close()
    await ops.close()
    await gauges.close()
    connection.disconnect()
  }
  t.teardown(close)
  return { url, metrics, leader, connection, close, scrape: async () => await (await fetch(`${url}/metrics`)).text() }
}

/** The value of one sample (`name{labels} value`), or undefined when the scrape has none. */
function sample (text: string, name: string, labels: string): number | undefined {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${name}{`) && labels.split(',').every((label) => candidate.includes(label)))
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1))
}

t.test('cluster gauges: exactly one of two workers exports them, with the values Redis holds', async (t) => {
  const redis = await startLocalRedis()
  t.teardown(async () => { await redis.stop() })
  const prefix = 'mds-metrics-test'
  const a = await startProcess(t, redis.url, prefix)
  const b = await startProcess(t, redis.url, prefix)

  // Given: three flow-step jobs waiting (one prioritized), one delayed; two intake entries; two
  // parked changes; three Marketo calls spent today; a Dynamics feed caught up 5 s ago.
  const writer = createWorkerRedisConnection(redis.url, 'test-writer')
  t.teardown(() => { writer.disconnect() })
  const queue = new Queue(QUEUE.flowStep, { connection: writer, prefix: queuePrefix(prefix, QUEUE.flowStep) })
  t.teardown(async () => { await queue.close() })
  await queue.add('sync-person-batch', {}, {})
  await queue.add('sync-person-batch', {}, {})
  await queue.add('sync-person-batch', {}, { priority: 5 })
  await queue.add('sync-person-batch', {}, { delay: 60_000 })
  const intake = flowStepIntakeKeys(prefix)
  await writer.xadd(intake.stream, '*', 'v', '1')
  await writer.xadd(intake.stream, '*', 'v', '1')
  const parked = parkedChangeKeys(prefix)
  await writer.zadd(parked.index, 1, 'marketo-to-dynamics:lead:00000000-0000-0000-0000-000000000001', 2, 'marketo-to-dynamics:contact:00000000-0000-0000-0000-000000000002')
  const budget = new MarketoCallBudget(writer, { keyPrefix: prefix, dailyBudget: 100 })
  for (let call = 0; call < 3; call++) await (await budget.acquire()).release()
  const progress = new SyncProgress(writer, prefix, a.metrics)
  await progress.dynamicsPass('lead', Date.now() - 5_000, { kind: 'advanced', version: 1, caughtUp: true, upserted: 2, deleted: 0 },
    { created: 1, updated: 1, unchanged: 0, flaggedDeleted: 0, linked: 0, reported: 0, refused: 0, filtered: 0, converted: 0 })
  await progress.marketoPass(Date.now() - 60_000, { kind: 'advanced', version: 1, caughtUp: false, persons: 1, unlinked: 0, recordMissing: 0, written: 1, unchanged: 0, refused: [], changedOutsideSync: 1 })

  // When both are scraped (once one holds the lease)
  const scrapes = await eventually(async () => {
    const texts = await Promise.all([a.scrape(), b.scrape()])
    return texts.some((text) => text.includes('mds_queue_jobs{')) ? texts : undefined
  }, { what: 'a process to take the metrics lease' })

  // Then exactly one has the cluster gauges, and they equal the truth
  const exporters = scrapes.filter((text) => text.includes('mds_queue_jobs'))
  t.equal(exporters.length, 1, 'one scrape of two holds the cluster gauges')
  const text = exporters[0]!
  t.equal(sample(text, 'mds_queue_jobs', 'queue="flow-step",state="waiting"'), 3, 'waiting counts the prioritized job')
  t.equal(sample(text, 'mds_queue_jobs', 'queue="flow-step",state="delayed"'), 1)
  t.equal(sample(text, 'mds_queue_jobs', 'queue="flow-step",state="active"'), 0)
  t.equal(sample(text, 'mds_queue_jobs', 'queue="flow-step-callback",state="waiting"'), 0, 'every queue of src/queue/names.ts')
  t.equal(sample(text, 'mds_intake_entries', 'kind="length"'), 2)
  t.equal(sample(text, 'mds_intake_entries', 'kind="pending"'), 0)
  t.equal(sample(text, 'mds_parked_changes', 'direction="marketo-to-dynamics"'), 2)
  t.equal(sample(text, 'mds_parked_changes', 'direction="dynamics-to-marketo"'), 0, 'a direction with none parked exists at 0, so its first burst is an increase')
  t.match(text, /\nmds_marketo_calls_today\{?[^\n]* 3\n/)
  t.match(text, /\nmds_marketo_daily_call_budget\{?[^\n]* 100\n/)
  const dynamicsLag = sample(text, 'mds_sync_lag_seconds', 'direction="dynamics-to-marketo"')!
  t.ok(dynamicsLag >= 5 && dynamicsLag < 30, `Dynamics → Marketo lag measured from the caught-up pass's start (${dynamicsLag} s)`)
  const marketoLag = sample(text, 'mds_sync_lag_seconds', 'direction="marketo-to-dynamics"')!
  t.ok(marketoLag >= 60 && marketoLag < 90, `a feed never caught up is measured from its first read (${marketoLag} s)`)
  // The counters are the recording process's own
  const counters = await a.scrape()
  t.equal(sample(counters, 'mds_sync_records_total', 'direction="dynamics-to-marketo",entity="lead",outcome="created"'), 1)
  t.equal(sample(counters, 'mds_sync_records_total', 'direction="marketo-to-dynamics",entity="person",outcome="written"'), 1)
  t.equal(sample(await b.scrape(), 'mds_sync_records_total', 'outcome="created"'), undefined, 'the other process counted nothing')

  // When the exporting process stops, the other takes over: still exactly one
  const [leaderProcess, other] = a.leader.isLeader ? [a, b] : [b, a]
  await leaderProcess.close()
  const takenOver = await eventually(async () => {
    const scraped = await other.scrape()
    return scraped.includes('mds_queue_jobs{') ? scraped : undefined
  }, { what: 'the other process to take the metrics lease' })
  t.equal(sample(takenOver, 'mds_queue_jobs', 'queue="flow-step",state="waiting"'), 3)
})

t.test('/health/ready names each dependency, and answers 503 naming the one that failed', async (t) => {
  const redis = await startLocalRedis()
  t.teardown(async () => { await redis.stop().catch(() => undefined) })
  const connection = createApiRedisConnection(redis.url, 'test-health')
  connection.on('error', () => undefined)
  t.teardown(() => { connection.disconnect() })
  // A Dynamics token from an Azure AD nobody answers at.
  const unreachable = `https://127.0.0.1:${await freePort()}`
  const dataverse = new DataverseClient({
    url: 'https://contoso.crm.dynamics.com',
    tokens: createMsalAccessTokenProvider({ authorityHost: unreachable, tenantId: 'tenant', clientId: 'client', credential: { kind: 'secret', clientSecret: 'not-a-secret' }, resourceUrl: 'https://contoso.crm.dynamics.com', timeoutMs: 2_000 }),
    logger,
    maxConcurrentRequests: 1,
    requestTimeoutMs: 1_000
  })
  let marketoAsked = 0
  const ops = await buildOpsServer({
    logger,
    exposition: metricsExposition(new Registry()),
    health: {
      redis: connection,
      checks: [
        cachedCheck({ name: 'dynamics-token', check: async () => { await dataverse.checkAccessToken() } }),
        cachedCheck({ name: 'marketo-token', check: async () => { marketoAsked++ } }, { cacheMs: 60_000 })
      ]
    }
  })
  t.teardown(async () => { await ops.close() })
  await eventually(() => connection.status === 'ready' || undefined, { what: 'the API connection to Redis' })

  const live = await ops.inject({ method: 'GET', url: '/health/live' })
  t.equal(live.statusCode, 200)

  const ready = await ops.inject({ method: 'GET', url: '/health/ready' })
  t.equal(ready.statusCode, 503)
  const body = ready.json() as { status: string, redis: boolean, checks: Array<{ name: string, ok: boolean, code?: string }> }
  t.equal(body.status, 'unavailable')
  t.equal(body.redis, true, '`redis` stays, for existing probes')
  t.same(body.checks.map((check) => check.name), ['redis', 'dynamics-token', 'marketo-token'], 'every dependency checked is named')
  const dynamics = body.checks.find((check) => check.name === 'dynamics-token')!
  t.equal(dynamics.ok, false)
  t.match(dynamics.code, /^AZURE_AD_/, 'the failure is named by its code')
  t.notMatch(ready.body, /not-a-secret/, 'no secret in the answer')

  await ops.inject({ method: 'GET', url: '/health/ready' })
  t.equal(marketoAsked, 1, 'a check is cached: two probes, one token request')

  // When Redis stops, ready names it
  await redis.stop()
  const down = await ops.inject({ method: 'GET', url: '/health/ready' })
  t.equal(down.statusCode, 503)
  const downBody = down.json() as { redis: boolean, checks: Array<{ name: string, ok: boolean }> }
  t.equal(downBody.redis, false)
  t.equal(downBody.checks.find((check) => check.name === 'redis')?.ok, false)
})
