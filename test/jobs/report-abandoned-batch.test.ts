import t from 'tap'
import { Redis } from 'ioredis'
import { startLocalRedis } from '../../sandbox/redis-server.ts'
import { createFlowStepQueues } from '../../src/queue/create-queues.ts'
import { flowCallbackJobId, flowStepJobId } from '../../src/queue/job-ids.ts'
import { FLOW_STEP_JOB_NAME } from '../../src/queue/names.ts'
import pino from 'pino'
import { createSyncPersonBatchProcessor, reportAbandonedBatch } from '../../jobs/sync-person-batch.ts'
import type { FlowStepJobData } from '../../src/queue/payloads.ts'

const redisServer = await startLocalRedis()
const redis = new Redis(redisServer.url, { maxRetriesPerRequest: null })
const queues = createFlowStepQueues(redis, { prefix: 'abandoned', onError: () => undefined, flowStepRetry: { attempts: 1, backoffMs: 10 }, callbackRetry: { attempts: 1, backoffMs: 10 } })
t.teardown(async () => {
  await queues.close()
  redis.disconnect()
  await redisServer.stop()
})

t.test('a flow-step job given up for good still reports every person once: settled outcomes kept, the rest failed with the reason', async (t) => {
  const data: FlowStepJobData = {
    invocationId: 'inv-abandoned',
    munchkinId: '123-ABC-456',
    campaignId: 1,
    triggered: false,
    callbackUrl: 'https://mkto-cfa.adobe.io/cb',
    sealedCallbackCredentials: 'v1.sealed',
    persons: [
      { marketoId: 1, fields: {}, syncAs: 'Lead' },
      { marketoId: 2, fields: {}, syncAs: 'Lead' },
      { marketoId: 2, fields: {}, syncAs: 'Lead' },
      { marketoId: 3, fields: {}, syncAs: 'Contact' }
    ],
    receivedAt: new Date().toISOString(),
    settledOutcomes: [{ marketoId: 2, kind: 'created', recordType: 'Lead', recordId: 'lead-2' }]
  }
  await queues.flowStep.add(FLOW_STEP_JOB_NAME, data, { jobId: flowStepJobId(data.invocationId) })
  const job = await queues.flowStep.getJob(flowStepJobId(data.invocationId))
  await reportAbandonedBatch(queues, job!, new Error('worker died twice'))
  await reportAbandonedBatch(queues, job!, new Error('reported again'))

  const callback = await queues.flowStepCallback.getJob(flowCallbackJobId(data.invocationId))
  t.ok(callback)
  t.same(callback!.data.outcomes.map((o) => [o.marketoId, o.kind, o.errorCode ?? null]), [
    [1, 'failed', 'SYNC_ABANDONED'],
    [2, 'created', null],
    [3, 'failed', 'SYNC_ABANDONED']
  ])
  t.match(callback!.data.outcomes[0]?.reason, /worker died twice/)
  t.equal(await queues.flowStepCallback.count(), 1, 'queued once, however often reported')
})

t.test('a job that already queued its callback and ran again (its process died before BullMQ recorded the completion) syncs nobody and reports nothing twice', async (t) => {
  const counts = { created: 1, existed: 0, failed: 1 }
  const data: FlowStepJobData = {
    invocationId: 'inv-rerun',
    munchkinId: '123-ABC-456',
    campaignId: 1,
    triggered: true,
    callbackUrl: 'https://mkto-cfa.adobe.io/cb',
    sealedCallbackCredentials: 'v1.sealed',
    // As the completed run left it: fields stripped, Assign To gone.
    persons: [{ marketoId: 7, fields: {}, syncAs: 'Lead' }, { marketoId: 8, fields: {}, syncAs: 'Lead' }],
    receivedAt: new Date().toISOString(),
    settledOutcomes: [],
    callbackQueued: counts
  }
  await queues.flowStep.add(FLOW_STEP_JOB_NAME, data, { jobId: flowStepJobId(data.invocationId) })
  const job = await queues.flowStep.getJob(flowStepJobId(data.invocationId))
  const untouchable = (what: string) => new Proxy({}, { get: () => { throw new Error(`${what} must not be used by a job whose callback is queued`) } })
  const process = createSyncPersonBatchProcessor({
    records: untouchable('Dynamics') as never,
    marketo: untouchable('Marketo') as never,
    links: untouchable('the record links') as never,
    claims: untouchable('the email claims') as never,
    logger: pino({ level: 'silent' }),
    queues
  })
  t.same(await process(job!), counts, 'the first run\'s counts, nothing synced')
  await reportAbandonedBatch(queues, job!, new Error('stalled again'))
  t.notOk(await queues.flowStepCallback.getJob(flowCallbackJobId(data.invocationId)), 'no SYNC_ABANDONED callback for persons already reported')
})
