import type { FlowCallbackJobData, PersonOutcome } from './payloads.ts'
import { flowCallbackJobId } from './job-ids.ts'
import { FLOW_CALLBACK_JOB_NAME } from './names.ts'
import { fieldPairs } from './flow-step-intake.ts'

export interface ParkedInvocationCallback {
  readonly name: string
  readonly data: FlowCallbackJobData
  readonly opts: { readonly jobId: string }
}

/**
 * An intake entry that cannot become a flow-step job was still answered 201: Marketo was told the
 * invocation was accepted and waits for its callback. When the entry's data can still be read far
 * enough to call back (invocation, munchkin, callback URL and sealed credentials, person ids),
 * this is the callback job reporting every person once as failed with the reason; otherwise null.
 * Its job id is the invocation's callback id, so queueing it again is one callback.
 */
export function parkedInvocationCallback (fields: readonly string[], problem: string): ParkedInvocationCallback | null {
  let data: unknown
  try {
    data = JSON.parse(fieldPairs(fields).get('data') ?? 'null')
  } catch {
    return null
  }
  if (typeof data !== 'object' || data === null) return null
  const { invocationId, munchkinId, callbackUrl, sealedCallbackCredentials, persons } = data as Record<string, unknown>
  if (typeof invocationId !== 'string' || invocationId === '' || typeof munchkinId !== 'string' || typeof callbackUrl !== 'string' ||
    typeof sealedCallbackCredentials !== 'string' || !Array.isArray(persons)) return null
  const marketoIds = new Set<number>()
  for (const person of persons as unknown[]) {
    const marketoId = (person as { marketoId?: unknown } | null)?.marketoId
    if (typeof marketoId === 'number' && Number.isSafeInteger(marketoId)) marketoIds.add(marketoId)
  }
  if (marketoIds.size === 0) return null
  const outcomes: PersonOutcome[] = [...marketoIds].map((marketoId) => ({
    marketoId,
    kind: 'failed',
    errorCode: 'INTAKE_PARKED',
    reason: `the invocation was accepted but could not be queued for sync: ${problem}`
  }))
  return {
    name: FLOW_CALLBACK_JOB_NAME,
    data: { invocationId, munchkinId, callbackUrl, sealedCallbackCredentials, outcomes },
    opts: { jobId: flowCallbackJobId(invocationId) }
  }
}
