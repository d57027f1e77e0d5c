import t from 'tap'
import { Queue } from 'bullmq'
import { Redis } from 'ioredis'
import { startBackgroundSyncProcesses } from '../helpers/background-sync-processes.ts'
import { acceptedOnly } from '../helpers/process-harness.ts'
import { eventually } from '../helpers/flow-step-harness.ts'
import { opsUrlOf, scrape, sumSamples } from '../helpers/ops-endpoints.ts'
import { QUEUE } from '../../src/queue/names.ts'
import { queuePrefix } from '../../src/queue/redis-keys.ts'

/**
 * Issue 13 §1, §2 on the service as deployed: the API and two workers as real processes with the
 * background sync on. After a flow-step run and a background-sync change, the counters a
 * Prometheus scrape of all three adds up to have moved; the cluster-wide gauges are in exactly one
 * scrape and equal what Redis holds, also once a worker is stopped; each process's /health/ready
 * names every dependency it checked.
 */

interface Ready { status: string, redis: boolean, checks: Array<{ name: string, ok: boolean, code?: string }> }

t.test('metrics and health of the API and two workers', async (t) => {
  const s = await startBackgroundSyncProcesses(t, { workers: 2 })
  const { h } = s
  const [apiOps, worker1Ops, worker2Ops] = await Promise.all([opsUrlOf(h, 'api'), opsUrlOf(h, 'worker-1'), opsUrlOf(h, 'worker-2')])

  // Given: a background-sync change (a new Dynamics lead reaches Marketo) and a flow-step run
  const [leadId] = s.seedLeads(1, 'metrics-lead')
  await s.linkedPerson(leadId!)
  const invocations = acceptedOnly(await h.runCampaign(h.createPersons(2, 'metrics-flow')))
  t.equal(invocations.length, 1)
  const reconciled = await h.reconcile(invocations)
  t.same(reconciled.problems, [])

  await t.test('metrics are not on the public port Marketo reaches', async (t) => {
    t.equal((await fetch(`${h.sandbox.publicUrl}/metrics`)).status, 404)
  })

  await t.test('the counters moved, summed over the three processes', async (t) => {
    const scrapes = await eventually(async () => {
      const texts = await Promise.all([apiOps, worker1Ops, worker2Ops].map(scrape))
      const jobs = texts.reduce((sum, text) => sum + (sumSamples(text, 'mds_jobs_total', ['queue="flow-step-callback"', 'outcome="completed"']) ?? 0), 0)
      return jobs >= 1 ? texts : undefined
    }, { what: 'the callback job to be counted' })
    const total = (name: string, labels: string[]) => scrapes.reduce((sum, text) => sum + (sumSamples(text, name, labels) ?? 0), 0)
    t.ok((sumSamples(scrapes[0]!, 'mds_http_request_duration_seconds_count', ['route="/submitAsyncAction"', 'status_code="201"']) ?? 0) >= 1, 'the API counted the invocation by its route template')
    t.ok(total('mds_jobs_total', ['queue="flow-step"', 'outcome="completed"']) >= 1, 'flow-step jobs completed')
    t.ok(total('mds_job_duration_seconds_count', ['queue="flow-step"']) >= 1, 'and their durations')
    t.ok(total('mds_sync_records_total', ['direction="dynamics-to-marketo"', 'entity="lead"']) >= 1, 'the lead synced to Marketo is counted')
    t.ok(total('mds_sync_passes_total', ['direction="marketo-to-dynamics"']) >= 1, 'Marketo passes ran')
    t.ok(total('mds_outside_calls_total', ['service="dynamics"']) >= 1, 'Dataverse calls')
    t.ok(total('mds_outside_calls_total', ['service="marketo"']) >= 1, 'Marketo calls')
    t.equal(total('mds_worker_up', []), 2, 'two workers alive')
  })

  await t.test('the cluster gauges are in exactly one scrape and equal the truth, also after a worker stops', async (t) => {
    const redis = new Redis(h.sandbox.env.REDIS_URL!, { maxRetriesPerRequest: 1 })
    t.teardown(() => { redis.disconnect() })
    const queue = new Queue(QUEUE.flowStep, { connection: redis, prefix: queuePrefix(s.prefix, QUEUE.flowStep) })
    t.teardown(async () => { await queue.close() })
    // A job no worker takes for an hour: the flow-step queue's delayed count is known.
    await queue.add('sync-person-batch', {}, { delay: 3_600_000 })

    const check = async (opsUrls: string[]) => {
      const texts = await eventually(async () => {
        const scraped = await Promise.all(opsUrls.map(scrape))
        return scraped.some((text) => text.includes('mds_queue_jobs{')) ? scraped : undefined
      }, { what: 'a worker exporting the cluster gauges' })
      t.equal(texts.filter((text) => text.includes('mds_queue_jobs')).length, 1, 'exactly one scrape holds them')
      const text = texts.find((candidate) => candidate.includes('mds_queue_jobs'))!
      const counts = await queue.getJobCounts('delayed', 'failed')
      t.equal(sumSamples(text, 'mds_queue_jobs', ['queue="flow-step"', 'state="delayed"']), counts.delayed)
      t.equal(sumSamples(text, 'mds_queue_jobs', ['queue="flow-step"', 'state="failed"']), counts.failed)
      t.ok(sumSamples(text, 'mds_sync_lag_seconds', ['direction="dynamics-to-marketo"']) !== undefined, 'the lag of each direction')
      t.ok(sumSamples(text, 'mds_sync_lag_seconds', ['direction="marketo-to-dynamics"']) !== undefined)
      t.ok((sumSamples(text, 'mds_marketo_calls_today') ?? 0) >= 1, 'Marketo calls spent today')
    }
    await check([apiOps, worker1Ops, worker2Ops])
    // When worker 2 stops (SIGTERM: it hands its lease back), worker 1 exports them
    await h.killWorker(1, 'SIGTERM')
    await check([apiOps, worker1Ops])
  })

  await t.test('/health/ready names each dependency on both ports', async (t) => {
    const ready = async (url: string) => {
      const response = await fetch(`${url}/health/ready`)
      return { status: response.status, body: await response.json() as Ready }
    }
    const names = (body: Ready) => body.checks.map((check) => check.name).sort()
    const publicReady = await ready(h.sandbox.publicUrl)
    t.equal(publicReady.status, 200)
    t.same(names(publicReady.body), ['dynamics-token', 'redis'])
    t.equal(publicReady.body.redis, true)
    const apiReady = await ready(apiOps)
    t.same(names(apiReady.body), ['dynamics-token', 'redis'], 'the API\'s ops port answers the same')
    const workerReady = await ready(worker1Ops)
    t.equal(workerReady.status, 200)
    t.same(names(workerReady.body), ['dynamics-token', 'marketo-token', 'redis', 'sync-schedulers'])
    t.ok(workerReady.body.checks.every((check) => check.ok))
    t.equal((await fetch(`${worker1Ops}/health/live`)).status, 200)
  })
})
