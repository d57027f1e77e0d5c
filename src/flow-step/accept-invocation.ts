import type { FlowStepIntake } from '../queue/flow-step-intake.ts'
import type { SealedBox } from '../crypto/sealed-box.ts'
import type { CallbackHostRule } from '../ssfs/callback-url-policy.ts'
import type { FlowStepJobData } from '../queue/payloads.ts'
import type { FlowStepPerson, PersonFields } from '../domain/person.ts'
import type { SubmitAsyncActionBody } from '../schemas/flow-step.ts'
import { checkCallbackUrl } from '../ssfs/callback-url-policy.ts'
import { CallbackUrlRefusedError, QueueUnavailableError } from '../errors.ts'
import { flowStepJobId, invocationIdFor } from '../queue/job-ids.ts'
import { PRIORITY } from '../queue/names.ts'
import { MARKETO_PERSON_FIELDS } from '../sync/person-field-mapping.ts'

export interface AcceptInvocationDeps {
  readonly intake: Pick<FlowStepIntake, 'append'>
  readonly callbackHosts: readonly CallbackHostRule[]
  readonly callbackCredentialsBox: SealedBox
}

export interface AcceptedInvocation {
  readonly invocationId: string
  readonly persons: number
}

/**
 * Turns one validated `/submitAsyncAction` body into one flow-step job, appended to the intake
 * (src/queue/flow-step-intake.ts) that workers move into the queue. All the work happens in the
 * worker; here we only decide whether the invocation can be accepted and store it, so the route
 * can answer Marketo's 201 within milliseconds.
 */
export async function acceptInvocation (body: SubmitAsyncActionBody, deps: AcceptInvocationDeps): Promise<AcceptedInvocation> {
  const check = checkCallbackUrl(body.callbackUrl, deps.callbackHosts)
  if (!check.allowed) throw new CallbackUrlRefusedError(check.reason)

  const invocationId = invocationIdFor({ campaignId: body.campaignId, batchid: body.batchid, token: body.token })
  const objectData = body.objectData ?? []
  // Marketo sends a triggering context only when a trigger campaign invoked the step (§1.6).
  const triggered = objectData.some((item) => item.triggeringContext !== undefined)
  const persons: FlowStepPerson[] = objectData.map(({ objectContext, flowStepContext }) => {
    const assignTo = flowStepContext?.assignTo?.trim()
    return {
      marketoId: objectContext.id,
      fields: mappedFields(objectContext),
      syncAs: flowStepContext?.syncAs ?? 'Lead',
      ...(assignTo === undefined || assignTo === '' ? {} : { assignTo })
    }
  })
  const data: FlowStepJobData = {
    invocationId,
    munchkinId: body.context.subscription.munchkinId,
    campaignId: body.campaignId,
    triggered,
    callbackUrl: check.url.href,
    sealedCallbackCredentials: deps.callbackCredentialsBox.seal(JSON.stringify({
      token: body.token,
      apiCallBackKey: body.apiCallBackKey
    })),
    persons,
    receivedAt: new Date().toISOString()
  }

  // One round trip. The job id comes from the invocation, and BullMQ adds no job whose id it
  // still holds, so a re-sent invocation is accepted again (Marketo needs its 201) without being
  // queued twice.
  try {
    await deps.intake.append({
      jobId: flowStepJobId(invocationId),
      priority: triggered ? PRIORITY.triggerCampaign : PRIORITY.batchCampaign,
      data
    })
  } catch (error) {
    throw new QueueUnavailableError({ cause: error })
  }
  return { invocationId, persons: persons.length }
}

const MAPPED_FIELD_NAMES: ReadonlySet<string> = new Set(MARKETO_PERSON_FIELDS)

/**
 * Only the fields the step maps: whatever else an admin chose to send has no business in Redis.
 * Walks the person's own keys (a handful; the object comes from JSON.parse, so `for…in` meets no
 * inherited ones) rather than probing for every mapped name: at 100 persons an invocation that is
 * half the work of picking them.
 */
function mappedFields (objectContext: Readonly<Record<string, unknown>>): PersonFields {
  const fields: Record<string, string | number | boolean | null> = {}
  for (const name in objectContext) {
    if (MAPPED_FIELD_NAMES.has(name)) fields[name] = objectContext[name] as string | number | boolean | null
  }
  return fields
}
