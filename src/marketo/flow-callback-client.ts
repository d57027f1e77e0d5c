import type { CallbackCredentials } from '../queue/payloads.ts'
import type { FlowCallbackBody } from '../schemas/flow-step.ts'
import { CallbackRejectedError, CallbackUndeliveredError } from './marketo-errors.ts'

/**
 * POSTs a flow step's results to Marketo's callback URL with the invocation's callback key and
 * one-time token (reference §1.7). Redirects are not followed: the URL was checked against the
 * allow-list, and a redirect would carry the token to a host nobody checked.
 */
export async function sendFlowCallback (
  callbackUrl: string,
  credentials: CallbackCredentials,
  body: FlowCallbackBody,
  { timeoutMs }: { timeoutMs: number }
): Promise<void> {
  let response: Response
  try {
    response = await fetch(callbackUrl, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        'x-api-key': credentials.apiCallBackKey,
        'x-callback-token': credentials.token
      },
      body: JSON.stringify(body),
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs)
    })
  } catch (error) {
    throw new CallbackUndeliveredError(`callback not delivered: ${(error as Error).name}`, { cause: error })
  }
  await response.arrayBuffer().catch(() => undefined)
  if (response.status >= 200 && response.status < 300) return
  if (response.status >= 300 && response.status < 400) throw new CallbackUndeliveredError(`callback answered a redirect (HTTP ${response.status}); redirects are not followed`)
  // 408 and 429 say "later", not "never".
  if (response.status >= 400 && response.status < 500 && response.status !== 408 && response.status !== 429) {
    throw new CallbackRejectedError(response.status)
  }
  throw new CallbackUndeliveredError(`callback answered HTTP ${response.status}`)
}
