import t from 'tap'
import { Redis } from 'ioredis'
import { startLocalRedis } from '../../sandbox/redis-server.ts'
import { createFlowStepQueues } from '../../src/queue/create-queues.ts'
import { flowCallbackJobId, flowStepJobId } from '../../src/queue/job-ids.ts'
import { FLOW_STEP_JOB_NAME } from '../../src/queue/names.ts'
import { reportAbandonedBatch } from '../../jobs/sync-person-batch.ts'
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
