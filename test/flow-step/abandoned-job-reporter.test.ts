import t, { type Test } from 'tap'
import pino from 'pino'
import { UnrecoverableError, Worker } from 'bullmq'
import { Redis } from 'ioredis'
import { startLocalRedis } from '../../sandbox/redis-server.ts'
import { createFlowStepQueues } from '../../src/queue/create-queues.ts'
import { flowCallbackJobId, flowStepJobId } from '../../src/queue/job-ids.ts'
import { FLOW_STEP_JOB_NAME, QUEUE } from '../../src/queue/names.ts'
import { abandonedJobsReportedKey, queuePrefix } from '../../src/queue/redis-keys.ts'
import type { FlowStepJobData } from '../../src/queue/payloads.ts'
import { AbandonedJobReporter, type ReportAbandonedJob } from '../../src/flow-step/abandoned-job-reporter.ts'
import { reportAbandonedBatch } from '../../jobs/sync-person-batch.ts'
import { eventually } from '../helpers/flow-step-harness.ts'

/**
 * A flow-step job that failed for good owes Marketo its callback even when the process that
 * recorded the failure died, or was shut down, before its `failed` listener ran: on real Redis and
 * BullMQ, the failure is recorded by a worker with no listener at all (the process that "died"),
 * and a reporter started afterwards queues the callback, once.
 */

const redisServer = await startLocalRedis()
const redis = new Redis(redisServer.url, { maxRetriesPerRequest: null })
t.teardown(async () => {
  redis.disconnect()
  await redisServer.stop()
})

let prefixes = 0
function setup (t: Test) {
  const prefix = `abandoned-${++prefixes}`
  const queues = createFlowStepQueues(redis, { prefix, onError: () => undefined, flowStepRetry: { attempts: 1, backoffMs: 10 }, callbackRetry: { attempts: 1, backoffMs: 10 } })
  const reporters: AbandonedJobReporter[] = []
  const startReporter = (report: ReportAbandonedJob = async (job, error) => { await reportAbandonedBatch(queues, job, error) }) => {
    const reporter = new AbandonedJobReporter({ redis, flowStepQueue: queues.flowStep, reportedKey: abandonedJobsReportedKey(prefix), report, logger: pino({ level: 'silent' }), sweepIntervalMs: 200 })
    reporters.push(reporter)
    reporter.start()
    return reporter
  }
  t.teardown(async () => {
    for (const reporter of reporters) await reporter.close()
    await queues.close()
  })
  return { prefix, queues, startReporter }
}

const jobData = (invocationId: string): FlowStepJobData => ({
  invocationId,
  munchkinId: '123-ABC-456',
  campaignId: 1,
  triggered: false,
  callbackUrl: 'https://mkto-cfa.adobe.io/cb',
  sealedCallbackCredentials: 'v1.sealed',
  persons: [{ marketoId: 1, fields: {}, syncAs: 'Lead' }, { marketoId: 2, fields: {}, syncAs: 'Lead' }],
  receivedAt: new Date().toISOString()
})

/** A worker that records the failure and nothing else: the process that died right after. */
async function failForGoodWithoutListener (prefix: string, invocationIds: readonly string[], queues: ReturnType<typeof setup>['queues']) {
  for (const id of invocationIds) await queues.flowStep.add(FLOW_STEP_JOB_NAME, jobData(id), { jobId: flowStepJobId(id) })
  const connection = new Redis(redisServer.url, { maxRetriesPerRequest: null })
  const dying = new Worker<FlowStepJobData>(QUEUE.flowStep, async () => { throw new UnrecoverableError('Dataverse answered garbage') }, { connection, prefix: queuePrefix(prefix, QUEUE.flowStep) })
  await eventually(async () => (await queues.flowStep.getFailedCount()) === invocationIds.length ? true : undefined, { what: 'the jobs failed for good' })
  await dying.close()
  connection.disconnect()
}

t.test('a job failed for good by a process that died before reporting it: a reporter started later queues its callback, every person failed with the reason', async (t) => {
  const s = setup(t)
  await failForGoodWithoutListener(s.prefix, ['inv-died'], s.queues)
  t.equal(await s.queues.flowStepCallback.count(), 0, 'nothing reported it yet')

  s.startReporter()
  const callback = await eventually(async () => await s.queues.flowStepCallback.getJob(flowCallbackJobId('inv-died')), { what: 'the callback job' })
  t.same(callback.data.outcomes.map((o) => [o.marketoId, o.kind, o.errorCode]), [[1, 'failed', 'SYNC_ABANDONED'], [2, 'failed', 'SYNC_ABANDONED']])
  t.match(callback.data.outcomes[0]?.reason, /Dataverse answered garbage/)
})

t.test('a reported job is marked in Redis: later reporters, even after the callback job is gone, do not report it again', async (t) => {
  const s = setup(t)
  await failForGoodWithoutListener(s.prefix, ['inv-once', 'inv-twice'], s.queues)
  const first = s.startReporter()
  await eventually(async () => (await s.queues.flowStepCallback.count()) === 2 ? true : undefined, { what: 'both callbacks queued' })
  await first.close()
  await s.queues.flowStepCallback.obliterate({ force: true }) // delivered and removed by retention
  let reports = 0
  const second = s.startReporter(async () => { reports++ })
  await second.settled() // the start-up sweep
  t.equal(reports, 0, 'nothing reported twice')
  t.same((await redis.zrange(abandonedJobsReportedKey(s.prefix), '0', '-1')).sort(), [flowStepJobId('inv-once'), flowStepJobId('inv-twice')])
})

t.test('close() waits for a report in flight', async (t) => {
  const s = setup(t)
  await failForGoodWithoutListener(s.prefix, ['inv-closing'], s.queues)
  let release!: () => void
  const held = new Promise<void>((resolve) => { release = resolve })
  let started = false
  const reporter = s.startReporter(async (job, error) => {
    started = true
    await held
    await reportAbandonedBatch(s.queues, job, error)
  })
  await eventually(() => started || undefined, { what: 'the report to start' })
  let closed = false
  const closing = reporter.close().then(() => { closed = true })
  await new Promise((resolve) => setImmediate(resolve))
  t.notOk(closed, 'still waiting for the report')
  release()
  await closing
  t.ok(await s.queues.flowStepCallback.getJob(flowCallbackJobId('inv-closing')), 'the callback was queued before close() returned')
})
