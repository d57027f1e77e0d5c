import type { PersonOutcome } from '../queue/payloads.ts'
import type { FlowCallbackBody } from '../schemas/flow-step.ts'
import { CALLBACK_FIELD } from '../ssfs/service-definition.ts'

/**
 * Outcomes → Marketo's `flowCallBack` body (reference §1.7): one item per person with its
 * `leadData.id` (an item without it is recorded as unsuccessful), the record id and type as the
 * lead fields the service definition declares, and `activityData` for the activity log, where
 * `success`/`reason`/`errorCode` are the interface's reserved attributes.
 */
export function buildFlowCallbackBody (munchkinId: string, outcomes: readonly PersonOutcome[]): FlowCallbackBody {
  return {
    munchkinId,
    objectData: outcomes.map((outcome) => ({
      leadData: {
        id: outcome.marketoId,
        ...(outcome.recordId === undefined ? {} : { [CALLBACK_FIELD.recordId]: outcome.recordId, [CALLBACK_FIELD.recordType]: outcome.recordType ?? null })
      },
      activityData: {
        success: outcome.kind !== 'failed',
        outcome: outcome.kind,
        ...(outcome.recordId === undefined ? {} : { dynamicsRecordId: outcome.recordId, dynamicsRecordType: outcome.recordType ?? '' }),
        ...(outcome.kind === 'failed' ? { errorCode: outcome.errorCode ?? 'FAILED', reason: outcome.reason ?? 'failed' } : {}),
        ...(outcome.kind === 'existed' ? { reason: `${outcome.recordType ?? 'Record'} already exists in Dynamics; nothing was changed` } : {})
      }
    }))
  }
}
