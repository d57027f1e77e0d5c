import { Worker, type Job } from 'bullmq'
import type { Redis } from 'ioredis'
import type { Logger } from 'pino'
import type { Config } from './config.ts'
import type { FlowCallbackJobData, FlowStepJobData } from './queue/payloads.ts'
import type { PersonDirectory } from './flow-step/sync-person-batch.ts'
import type { SealedBox } from './crypto/sealed-box.ts'
import { createFlowStepQueues } from './queue/create-queues.ts'
import { FLOW_STEP_JOB_NAME, QUEUE } from './queue/names.ts'
import { flowStepIntakeKeys } from './queue/flow-step-intake.ts'
import { IntakeMover } from './queue/intake-mover.ts'
import { PersonRecords } from './dynamics/person-records.ts'
import type { DataverseClient } from './dynamics/dataverse-client.ts'
import { RecordLinkStore } from './links/record-link-store.ts'
import { EmailClaims } from './flow-step/email-claims.ts'
import { createSyncPersonBatchProcessor, reportAbandonedBatch } from '../jobs/sync-person-batch.ts'
import { createSendFlowCallbackProcessor } from '../jobs/send-flow-callback.ts'

export interface WorkerDeps {
  readonly config: Config
  readonly logger: Logger
  /** Worker-policy connections (src/queue/connections.ts): one for commands, one per blocking worker. */
  readonly connect: (name: string) => Redis
  readonly dataverse: DataverseClient
  readonly marketo: PersonDirectory
  readonly callbackCredentialsBox: SealedBox
}

export interface RunningWorker {
  /** Idempotent: waits for active jobs, then closes workers, queues and connections. */
  close (): Promise<void>
}

/**
 * A worker process's job consumers, and its mover of the API's intake into the flow-step queue.
 * Any number of these may run against one Redis: BullMQ hands each job to one of them, the
 * intake's consumer group each entry, and the email claims keep creation exclusive across them.
 */
export function buildWorker (deps: WorkerDeps): RunningWorker {
  const { config, logger } = deps
  const prefix = config.redis.keyPrefix
  const connections: Redis[] = []
  const connect = (name: string) => {
    const connection = deps.connect(name)
    connections.push(connection)
    return connection
  }
  const commands = connect('mds-worker-commands')
  const onError = (queue: string) => (error: Error) => logger.error({ err: error, queue }, 'queue connection error')
  const queues = createFlowStepQueues(commands, {
    prefix,
    onError: (error, queue) => { onError(queue)(error) },
    flowStepRetry: config.flowStep,
    callbackRetry: config.callback
  })

  const syncProcessor = createSyncPersonBatchProcessor({
    records: new PersonRecords(deps.dataverse),
    marketo: deps.marketo,
    links: new RecordLinkStore(commands, prefix),
    claims: new EmailClaims(commands, prefix, { claimTtlMs: config.flowStep.emailClaimTtlMs }),
    logger: logger.child({ job: FLOW_STEP_JOB_NAME }),
    queues
  })
  const callbackProcessor = createSendFlowCallbackProcessor({
    callbackCredentialsBox: deps.callbackCredentialsBox,
    timeoutMs: config.callback.timeoutMs
  })

  // A job whose worker died is run again; BullMQ gives up after `maxStalledCount` such stalls,
  // which must not come before the tries the job is entitled to (BullMQ's default is 1).
  const lock = { lockDuration: config.worker.lockDurationMs, stalledInterval: config.worker.stalledIntervalMs }
  const flowStepWorker = new Worker<FlowStepJobData>(QUEUE.flowStep, syncProcessor, {
    connection: connect('mds-worker-flow-step'), prefix, concurrency: config.worker.concurrency, ...lock, maxStalledCount: config.flowStep.attempts
  })
  const callbackWorker = new Worker<FlowCallbackJobData>(QUEUE.flowStepCallback, callbackProcessor, {
    connection: connect('mds-worker-callback'), prefix, concurrency: config.worker.concurrency, ...lock, maxStalledCount: config.callback.attempts
  })
  const workers = [flowStepWorker, callbackWorker]
  const isFinal = (job: Job, error: Error) => job.attemptsMade >= (job.opts.attempts ?? 1) || error.name === 'UnrecoverableError'
  for (const worker of workers) {
    worker.on('error', onError(worker.name))
    worker.on('failed', (job, error) => {
      const final = job !== undefined && isFinal(job, error)
      logger[final ? 'error' : 'warn']({ queue: worker.name, jobId: job?.id, attemptsMade: job?.attemptsMade, err: error }, final ? 'job failed for good' : 'job failed; will retry')
    })
    worker.on('completed', (job, result: unknown) => logger.info({ queue: worker.name, jobId: job.id, result }, 'job completed'))
  }
  flowStepWorker.on('failed', (job, error) => {
    if (job === undefined || !isFinal(job, error)) return
    reportAbandonedBatch(queues, job, error).catch((reportError: unknown) => {
      logger.error({ err: reportError, jobId: job.id }, 'could not queue the callback of an abandoned flow-step job')
    })
  })

  const intakeMover = new IntakeMover({
    redis: connect('mds-worker-intake'),
    queue: queues.flowStep,
    keys: flowStepIntakeKeys(prefix),
    logger: logger.child({ component: 'intake-mover' }),
    claimIdleMs: config.worker.lockDurationMs
  })
  intakeMover.start()

  let closing: Promise<void> | undefined
  return {
    close () {
      closing ??= (async () => {
        for (const step of [
          async () => { await intakeMover.close() },
          async () => { await Promise.all(workers.map(async (w) => { await w.close() })) },
          async () => { await queues.close() },
          async () => { for (const connection of connections) connection.disconnect() }
        ]) {
          try { await step() } catch (error) { logger.error({ err: error }, 'error while closing the worker') }
        }
      })()
      return closing
    }
  }
}
