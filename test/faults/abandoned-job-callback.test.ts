import t from 'tap'
import pino from 'pino'
import { UnrecoverableError, Worker } from 'bullmq'
import { Redis } from 'ioredis'
import { startFlowStepHarness, eventually } from '../helpers/flow-step-harness.ts'
import { flowStepIntakeKeys } from '../../src/queue/flow-step-intake.ts'
import { IntakeMover } from '../../src/queue/intake-mover.ts'
import { QUEUE } from '../../src/queue/names.ts'
import { abandonedJobsReportedKey, queuePrefix } from '../../src/queue/redis-keys.ts'
import type { FlowStepJobData } from '../../src/queue/payloads.ts'

/**
 * Issue 11 §3.1: a flow-step job that failed for good reaches Marketo's callback even when the
 * worker that recorded the failure died before its `failed` listener could queue the callback.
 * Here that worker is a bare BullMQ worker with no listener at all; the service's worker, started
 * afterwards, finds the unreported failure and Marketo hears about every person.
 */

const h = await startFlowStepHarness(t, { withWorker: false, requiredFields: { leads: ['lastname'] } })
const { marketo } = h.sandbox

interface CallbackItem { leadData: { id: number }, activityData: { success: boolean, outcome: string, reason?: string, errorCode?: string } }

t.test('a job failed for good by a worker killed before reporting it: the next worker sends its callback, each person failed with the reason', async (t) => {
  const ids = [
    marketo.persons.create({ email: 'abandoned.one@example.com', firstName: 'One', lastName: 'Abandoned' }),
    marketo.persons.create({ email: 'abandoned.two@example.com', firstName: 'Two', lastName: 'Abandoned' })
  ]
  const run = await marketo.runCampaign(h.service, { personIds: ids, kind: 'batch', flowStepContext: { syncAs: 'Lead' } })
  t.same(run.invocations.map((i) => i.status), [201], 'accepted')

  // The worker that "died": it moves the intake entry, fails the job for good, and reports nothing.
  const prefix = h.config.redis.keyPrefix
  const connections = [0, 1].map(() => new Redis(h.config.redis.url, { maxRetriesPerRequest: null }))
  const mover = new IntakeMover({ redis: connections[0]!, queue: h.queues.flowStep, callbackQueue: h.queues.flowStepCallback, keys: flowStepIntakeKeys(prefix), logger: pino({ level: 'silent' }), claimIdleMs: 60_000, blockMs: 200 })
  mover.start()
  const dying = new Worker<FlowStepJobData>(QUEUE.flowStep, async () => { throw new UnrecoverableError('the process ran out of memory') }, { connection: connections[1]!, prefix: queuePrefix(prefix, QUEUE.flowStep) })
  await eventually(async () => (await h.queues.flowStep.getFailedCount()) === 1 ? true : undefined, { what: 'the job failed for good' })
  await dying.close()
  await mover.close()
  connections[1]!.disconnect()
  t.equal(await h.queues.flowStepCallback.count(), 0, 'no callback queued by the dead worker')

  h.startWorker()
  const callback = await marketo.waitForCallback(run.invocations[0]!.token, { timeoutMs: 20_000 })
  const items = (callback.body as { objectData: CallbackItem[] }).objectData
  t.same(items.map((item) => [item.leadData.id, item.activityData.outcome, item.activityData.success]), ids.map((id) => [id, 'failed', false]))
  for (const item of items) t.match(item.activityData.reason, /the process ran out of memory/)
})
