import { UnrecoverableError, type Job } from 'bullmq'
import type { SealedBox } from '../src/crypto/sealed-box.ts'
import type { CallbackCredentials, FlowCallbackJobData } from '../src/queue/payloads.ts'
import { SealedBoxError } from '../src/crypto/sealed-box.ts'
import { buildFlowCallbackBody } from '../src/flow-step/callback-body.ts'
import { sendFlowCallback } from '../src/marketo/flow-callback-client.ts'
import { CallbackRejectedError } from '../src/marketo/marketo-errors.ts'
import { CallbackUrlNotAllowedError, checkCallbackUrl, type CallbackHostRule } from '../src/ssfs/callback-url-policy.ts'

export interface SendFlowCallbackDeps {
  readonly callbackCredentialsBox: SealedBox
  readonly timeoutMs: number
  /** Config `ssfs.callbackHosts`: the allow-list as it is now, not as it was when the job was queued. */
  readonly callbackHosts: readonly CallbackHostRule[]
}

/**
 * Callback job: report an invocation's outcomes to Marketo. Failures to deliver are retried by
 * BullMQ with exponential backoff (queue options); a refusal (4xx) or unreadable credentials can
 * never succeed and are parked as failed jobs instead of retried.
 *
 * The URL is checked against the allow-list again here, before the credentials are even opened:
 * the API checked it at intake, but job data sits in Redis in clear (anyone who can write there
 * could point the token elsewhere) and the allow-list may have been narrowed since. A URL no longer
 * allowed is parked as failed with the reason, never called.
 */
export function createSendFlowCallbackProcessor (deps: SendFlowCallbackDeps) {
  return async function processSendFlowCallback (job: Job<FlowCallbackJobData>): Promise<{ persons: number }> {
    const allowed = checkCallbackUrl(job.data.callbackUrl, deps.callbackHosts)
    if (!allowed.allowed) {
      const refusal = new CallbackUrlNotAllowedError(allowed.reason)
      throw new UnrecoverableError(`${refusal.code}: ${refusal.message}`)
    }
    let credentials: CallbackCredentials
    try {
      credentials = JSON.parse(deps.callbackCredentialsBox.open(job.data.sealedCallbackCredentials)) as CallbackCredentials
    } catch (error) {
      if (error instanceof SealedBoxError) throw new UnrecoverableError(`${error.code}: ${error.message}`)
      throw error
    }
    try {
      await sendFlowCallback(allowed.url.href, credentials, buildFlowCallbackBody(job.data.munchkinId, job.data.outcomes), { timeoutMs: deps.timeoutMs })
    } catch (error) {
      if (error instanceof CallbackRejectedError) throw new UnrecoverableError(`${error.code}: ${error.message}`)
      throw error
    }
    return { persons: job.data.outcomes.length }
  }
}
