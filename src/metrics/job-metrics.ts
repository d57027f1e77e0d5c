import type { Job, Worker } from 'bullmq'
import { isFinalFailure } from '../queue/job-event-log.ts'
import type { ServiceMetrics } from './service-metrics.ts'

/**
 * Job durations and outcomes from a BullMQ worker's own events, in the process that ran the job:
 * each job's end is counted once, by the worker that ran it, so the sum over workers is the total.
 * (QueueEvents would see every worker's jobs in every process, and count each N times.)
 */
export interface JobObserver {
  observe (worker: Worker): void
}

export function jobMetrics (metrics: Pick<ServiceMetrics, 'jobDuration' | 'jobsFinished'>): JobObserver {
  const record = (queue: string, job: Job, outcome: 'completed' | 'failed' | 'retried'): void => {
    metrics.jobsFinished.inc({ queue, outcome })
    // processedOn is when this try started, finishedOn when it ended (both set by BullMQ's scripts).
    const startedAt = job.processedOn
    const endedAt = job.finishedOn ?? Date.now()
    if (startedAt !== undefined) metrics.jobDuration.observe({ queue, outcome }, Math.max(0, endedAt - startedAt) / 1000)
  }
  return {
    observe (worker) {
      worker.on('completed', (job) => { record(worker.name, job, 'completed') })
      worker.on('failed', (job, error) => {
        if (job !== undefined) record(worker.name, job, isFinalFailure(job, error) ? 'failed' : 'retried')
      })
    }
  }
}
