import { Queue } from 'bullmq'
import type { Redis } from 'ioredis'
import { QUEUE } from './names.ts'
import type { FlowCallbackJobData, FlowStepJobData } from './payloads.ts'

export interface FlowStepQueues {
  readonly flowStep: Queue<FlowStepJobData>
  readonly flowStepCallback: Queue<FlowCallbackJobData>
  close (): Promise<void>
}

/**
 * Completed jobs are kept for a day so their ids keep blocking a re-sent invocation (a custom
 * job id only de-duplicates while the job record exists); failed ones for a week, for ops to read.
 */
const RETENTION = {
  removeOnComplete: { age: 24 * 3600, count: 100_000 },
  removeOnFail: { age: 7 * 24 * 3600, count: 100_000 }
}

export interface FlowStepQueueOptions {
  readonly prefix: string
  readonly callbackRetry: { readonly attempts: number; readonly backoffMs: number }
  /** The API adds jobs from HTTP requests: fail at once when Redis is away instead of waiting. */
  readonly failFast: boolean
}

export function createFlowStepQueues (connection: Redis, { prefix, callbackRetry, failFast }: FlowStepQueueOptions): FlowStepQueues {
  const flowStep = new Queue<FlowStepJobData>(QUEUE.flowStep, {
    connection,
    prefix,
    skipWaitingForReady: failFast,
    defaultJobOptions: { ...RETENTION, attempts: 5, backoff: { type: 'exponential', delay: 1_000 } }
  })
  const flowStepCallback = new Queue<FlowCallbackJobData>(QUEUE.flowStepCallback, {
    connection,
    prefix,
    skipWaitingForReady: failFast,
    defaultJobOptions: { ...RETENTION, attempts: callbackRetry.attempts, backoff: { type: 'exponential', delay: callbackRetry.backoffMs } }
  })
  return {
    flowStep,
    flowStepCallback,
    async close () {
      await Promise.allSettled([flowStep.close(), flowStepCallback.close()])
    }
  }
}
