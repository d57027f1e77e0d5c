import { UnrecoverableError, type Job } from 'bullmq'
import type { SealedBox } from '../src/crypto/sealed-box.ts'
import type { CallbackCredentials, FlowCallbackJobData } from '../src/queue/payloads.ts'
import { SealedBoxError } from '../src/crypto/sealed-box.ts'
import { buildFlowCallbackBody } from '../src/flow-step/callback-body.ts'
import { sendFlowCallback } from '../src/marketo/flow-callback-client.ts'
import { CallbackRejectedError } from '../src/marketo/marketo-errors.ts'

export interface SendFlowCallbackDeps {
  readonly callbackCredentialsBox: SealedBox
  readonly timeoutMs: number
}

/**
 * Callback job: report an invocation's outcomes to Marketo. Failures to deliver are retried by
 * BullMQ with exponential backoff (queue options); a refusal (4xx) or unreadable credentials can
 * never succeed and are parked as failed jobs instead of retried.
 */
export function createSendFlowCallbackProcessor (deps: SendFlowCallbackDeps) {
  return async function processSendFlowCallback (job: Job<FlowCallbackJobData>): Promise<{ persons: number }> {
    let credentials: CallbackCredentials
    try {
      credentials = JSON.parse(deps.callbackCredentialsBox.open(job.data.sealedCallbackCredentials)) as CallbackCredentials
    } catch (error) {
      if (error instanceof SealedBoxError) throw new UnrecoverableError(`${error.code}: ${error.message}`)
      throw error
    }
    try {
      await sendFlowCallback(job.data.callbackUrl, credentials, buildFlowCallbackBody(job.data.munchkinId, job.data.outcomes), { timeoutMs: deps.timeoutMs })
    } catch (error) {
      if (error instanceof CallbackRejectedError) throw new UnrecoverableError(`${error.code}: ${error.message}`)
      throw error
    }
    return { persons: job.data.outcomes.length }
  }
}
