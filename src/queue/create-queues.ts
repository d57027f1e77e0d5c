import { Queue } from 'bullmq'
import type { RedisClient } from './connections.ts'
import { QUEUE } from './names.ts'
import { queuePrefix } from './redis-keys.ts'
import type { FlowCallbackJobData, FlowStepJobData } from './payloads.ts'

export interface FlowStepQueues {
  readonly flowStep: Queue<FlowStepJobData>
  readonly flowStepCallback: Queue<FlowCallbackJobData>
  close (): Promise<void>
}

/**
 * How fast the HTTP side fails while Redis is away comes from its connection (no offline queue,
 * src/queue/connections.ts), not from BullMQ's `skipWaitingForReady`: that option makes BullMQ's
 * one-time initialisation (an INFO call) fail for good when it runs before the connection is up.
 *
 * Completed jobs are kept for a day so their ids keep blocking a re-sent invocation (a custom
 * job id only de-duplicates while the job record exists); failed ones for a week, for ops to read.
 * The count caps bound Redis memory, so above about 100,000 invocations a day the window in which
 * a re-sent invocation is recognised is shorter than a day.
 */
const RETENTION = {
  removeOnComplete: { age: 24 * 3600, count: 100_000 },
  removeOnFail: { age: 7 * 24 * 3600, count: 100_000 }
}

export interface FlowStepQueueOptions {
  /** REDIS_KEY_PREFIX; each queue's BullMQ prefix adds its hash tag (src/queue/redis-keys.ts). */
  readonly prefix: string
  /** Every Queue needs an `error` listener, or a Redis hiccup becomes an unhandled 'error' event. */
  readonly onError: (error: Error, queue: string) => void
  readonly flowStepRetry: RetryOptions
  readonly callbackRetry: RetryOptions
}

interface RetryOptions { readonly attempts: number; readonly backoffMs: number }

export function createFlowStepQueues (connection: RedisClient, { prefix, onError, flowStepRetry, callbackRetry }: FlowStepQueueOptions): FlowStepQueues {
  const flowStep = new Queue<FlowStepJobData>(QUEUE.flowStep, {
    connection,
    prefix: queuePrefix(prefix, QUEUE.flowStep),
    defaultJobOptions: { ...RETENTION, attempts: flowStepRetry.attempts, backoff: { type: 'exponential', delay: flowStepRetry.backoffMs } }
  })
  const flowStepCallback = new Queue<FlowCallbackJobData>(QUEUE.flowStepCallback, {
    connection,
    prefix: queuePrefix(prefix, QUEUE.flowStepCallback),
    defaultJobOptions: { ...RETENTION, attempts: callbackRetry.attempts, backoff: { type: 'exponential', delay: callbackRetry.backoffMs } }
  })
  flowStep.on('error', (error) => { onError(error, QUEUE.flowStep) })
  flowStepCallback.on('error', (error) => { onError(error, QUEUE.flowStepCallback) })
  return {
    flowStep,
    flowStepCallback,
    async close () {
      await Promise.allSettled([flowStep.close(), flowStepCallback.close()])
    }
  }
}
