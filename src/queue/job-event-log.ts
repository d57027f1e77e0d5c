import type { Job, Worker } from 'bullmq'
import type { Logger } from 'pino'

/** A failure after which BullMQ will not run the job again: its last try, or an UnrecoverableError. */
export function isFinalFailure (job: Job, error: Error): boolean {
  return job.attemptsMade >= (job.opts.attempts ?? 1) || error.name === 'UnrecoverableError'
}

/** What every feature's workers log: errors, each failure (retried or final) and each completion, by job id. */
export function logJobEvents (worker: Worker, logger: Logger, onError: (error: Error, queue: string) => void, jobs?: { observe (worker: Worker): void }): void {
  // The job metrics (src/metrics/job-metrics.ts) ride on the one call every feature makes per worker.
  jobs?.observe(worker)
  worker.on('error', (error) => { onError(error, worker.name) })
  worker.on('failed', (job, error) => {
    const final = job !== undefined && isFinalFailure(job, error)
    logger[final ? 'error' : 'warn']({ queue: worker.name, jobId: job?.id, attemptsMade: job?.attemptsMade, err: error }, final ? 'job failed for good' : 'job failed; will retry')
  })
  worker.on('completed', (job, result: unknown) => logger.info({ queue: worker.name, jobId: job.id, result }, 'job completed'))
}
