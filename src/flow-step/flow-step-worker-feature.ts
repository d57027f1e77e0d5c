import { Worker } from 'bullmq'
import type { FlowCallbackJobData, FlowStepJobData } from '../queue/payloads.ts'
import type { PersonDirectory } from './sync-person-batch.ts'
import type { SealedBox } from '../crypto/sealed-box.ts'
import type { DataverseClient } from '../dynamics/dataverse-client.ts'
import type { WorkerFeature } from '../feature-module.ts'
import { closeInOrder } from '../feature-module.ts'
import { createFlowStepQueues } from '../queue/create-queues.ts'
import { FLOW_STEP_JOB_NAME, QUEUE } from '../queue/names.ts'
import { flowStepIntakeKeys } from '../queue/flow-step-intake.ts'
import { IntakeMover } from '../queue/intake-mover.ts'
import { abandonedJobsReportedKey, queuePrefix } from '../queue/redis-keys.ts'
import { AbandonedJobReporter } from './abandoned-job-reporter.ts'
import { isFinalFailure, logJobEvents } from '../queue/job-event-log.ts'
import { PersonRecords } from '../dynamics/person-records.ts'
import { RecordLinkStore } from '../links/record-link-store.ts'
import { EmailClaims } from './email-claims.ts'
import { createSyncPersonBatchProcessor, reportAbandonedBatch } from '../../jobs/sync-person-batch.ts'
import { createSendFlowCallbackProcessor } from '../../jobs/send-flow-callback.ts'

export interface FlowStepWorkerDeps {
  readonly dataverse: DataverseClient
  readonly marketo: PersonDirectory
  readonly callbackCredentialsBox: SealedBox
}

/**
 * The flow step's side of a worker process: its job consumers (sync persons, send the callback)
 * and its mover of the API's intake into the flow-step queue. Any number of these may run
 * against one Redis: BullMQ hands each job to one of them, the intake's consumer group each
 * entry, and the email claims keep creation exclusive across them.
 */
export function flowStepWorkerFeature (deps: FlowStepWorkerDeps): WorkerFeature {
  return {
    name: 'flow-step',
    start ({ config, logger, connect, onQueueError, jobObserver }) {
      const prefix = config.redis.keyPrefix
      const commands = connect('mds-worker-commands')
      const queues = createFlowStepQueues(commands, {
        prefix,
        onError: onQueueError,
        flowStepRetry: config.flowStep,
        callbackRetry: config.callback
      })

      const syncProcessor = createSyncPersonBatchProcessor({
        records: new PersonRecords(deps.dataverse),
        marketo: deps.marketo,
        links: new RecordLinkStore(commands, prefix),
        claims: new EmailClaims(commands, prefix, { keyHashSecret: config.redis.keyHashSecret, claimTtlMs: config.flowStep.emailClaimTtlMs }),
        logger: logger.child({ job: FLOW_STEP_JOB_NAME }),
        queues
      })
      const callbackProcessor = createSendFlowCallbackProcessor({
        callbackCredentialsBox: deps.callbackCredentialsBox,
        timeoutMs: config.callback.timeoutMs,
        callbackHosts: config.ssfs.callbackHosts
      })

      const lock = { lockDuration: config.worker.lockDurationMs, stalledInterval: config.worker.stalledIntervalMs }
      // A flow-step job whose worker died is run again once elsewhere (BullMQ's default); one that is
      // running when its process dies a second time is presumed to be what kills it (a poison job)
      // and fails for good, reported to Marketo, instead of taking down one worker after another.
      // Tries lost to Dynamics or Marketo outages are counted by `attempts`, not here. (A job that
      // merely ran beside the poison job in both dead processes fails with it, and is reported.)
      const flowStepWorker = new Worker<FlowStepJobData>(QUEUE.flowStep, syncProcessor, {
        connection: connect('mds-worker-flow-step'), prefix: queuePrefix(prefix, QUEUE.flowStep), concurrency: config.worker.concurrency, ...lock, maxStalledCount: 1
      })
      // A callback is one POST of data already decided: it cannot be what kills a process, but it can
      // run beside what does, and a callback job failed for good is never re-sent. So its stalls are
      // allowed as many times as its tries.
      const callbackWorker = new Worker<FlowCallbackJobData>(QUEUE.flowStepCallback, callbackProcessor, {
        connection: connect('mds-worker-callback'), prefix: queuePrefix(prefix, QUEUE.flowStepCallback), concurrency: config.worker.concurrency, ...lock, maxStalledCount: config.callback.attempts
      })
      const workers = [flowStepWorker, callbackWorker]
      for (const worker of workers) logJobEvents(worker, logger, onQueueError, jobObserver)
      // A job failed for good still owes Marketo its callback. The `failed` event is only the fast
      // path: the reporter also sweeps the failed set, so a process dying right after BullMQ
      // recorded the failure loses nothing (abandoned-job-reporter.ts).
      const abandonedJobs = new AbandonedJobReporter({
        redis: commands,
        flowStepQueue: queues.flowStep,
        reportedKey: abandonedJobsReportedKey(prefix),
        report: async (job, error) => { await reportAbandonedBatch(queues, job, error) },
        logger: logger.child({ component: 'abandoned-job-reporter' })
      })
      abandonedJobs.start()
      flowStepWorker.on('failed', (job, error) => {
        if (job !== undefined && isFinalFailure(job, error)) abandonedJobs.reportFailed(job, error)
      })

      const intakeMover = new IntakeMover({
        redis: connect('mds-worker-intake'),
        queue: queues.flowStep,
        callbackQueue: queues.flowStepCallback,
        keys: flowStepIntakeKeys(prefix),
        logger: logger.child({ component: 'intake-mover' }),
        claimIdleMs: config.worker.lockDurationMs
      })
      intakeMover.start()

      return {
        // The sync jobs still running stop before their next create and move back to wait
        // (jobs/sync-person-batch.ts). A callback is one POST bounded by CALLBACK_TIMEOUT_MS: it ends in time.
        handBack () { flowStepWorker.cancelAllJobs('the worker is shutting down') },
        async close () {
          // Intake first (no new jobs), then the workers (waiting for active jobs), then the queues
          // those jobs add callbacks to.
          await closeInOrder([
            async () => { await intakeMover.close() },
            async () => { await Promise.all(workers.map(async (w) => { await w.close() })) },
            async () => { await abandonedJobs.close() },
            async () => { await queues.close() }
          ], (error) => { logger.error({ err: error, feature: 'flow-step' }, 'error while closing the worker') })
        }
      }
    }
  }
}
