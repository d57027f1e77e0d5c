import type { ActivityAttribute, ActivityLog } from './activity-log.ts'
import type { FlowCallbackBody, FlowCallbackItem } from './flow-callback-body.ts'
import { marketoFieldOf } from './installed-service.ts'
import type { InvocationRecord } from './invocation-ledger.ts'
import type { LeadFieldCatalog } from './lead-fields.ts'
import { toMarketoDateTime } from './marketo-datetime.ts'
import type { PersonStore } from './person-store.ts'
import type { ServiceLog } from './service-log.ts'

/**
 * What Marketo does with an accepted callback (reference §1.7, §1.8): a chunk-level `errorCode`
 * stops all processing; otherwise, per item, the declared incoming fields are written onto the
 * person (each change logged as a Data Value Change) and one SSFS activity is recorded carrying
 * `success`/`reason`/`errorCode`, the declared callback attributes and the flow-step values.
 */

export interface CallbackWriteOutcome {
  readonly processedLeadIds: readonly number[]
  readonly skipped: ReadonlyArray<{ readonly leadId: number, readonly code: string }>
}

export interface CallbackWriterDependencies {
  readonly persons: PersonStore
  readonly fields: LeadFieldCatalog
  readonly activities: ActivityLog
  readonly serviceLog: ServiceLog
  readonly now: () => Date
}

/** Field lengths Marketo truncates over-long strings to (reference §1.3 "Data Types"). */
const MAX_STRING_BYTES: Readonly<Record<string, number>> = { string: 255, url: 255, email: 255, text: 2000 }

export function writeFlowCallback (body: FlowCallbackBody, invocation: InvocationRecord, deps: CallbackWriterDependencies): CallbackWriteOutcome {
  const at = deps.now()
  if (body.errorCode !== undefined) {
    deps.serviceLog.record({ at: at.toISOString(), level: 'chunk', code: body.errorCode, message: body.errorMessage ?? '', token: invocation.token })
    return { processedLeadIds: [], skipped: [] }
  }
  const invited = new Set(invocation.personIds)
  const processedLeadIds: number[] = []
  const skipped: Array<{ leadId: number, code: string }> = []
  for (const item of body.objectData) {
    const leadId = item.leadData.id
    // Only persons this invocation carried can be answered for with its token (inferred).
    const code = !invited.has(leadId) ? 'LEAD_NOT_IN_INVOCATION' : deps.persons.get(leadId) === undefined ? 'LEAD_NOT_FOUND' : undefined
    if (code !== undefined) {
      skipped.push({ leadId, code })
      deps.serviceLog.record({ at: at.toISOString(), level: 'record', code, message: `lead ${leadId} not written`, token: invocation.token, leadId })
      continue
    }
    writeOne(item, body, invocation, deps, at)
    processedLeadIds.push(leadId)
  }
  return { processedLeadIds, skipped }
}

function writeOne (item: FlowCallbackItem, body: FlowCallbackBody, invocation: InvocationRecord, deps: CallbackWriterDependencies, at: Date): void {
  const { service } = invocation
  const leadId = item.leadData.id
  const leadValues: Record<string, unknown> = { ...body.leadDefaults, ...item.leadData }
  deps.persons.update(leadId, incomingFieldValues(leadValues, invocation, deps.fields), {
    // DVC Source/Reason format (reference §1.8); the step sequence id is always 1 here.
    source: `${service.displayName} (${service.activityTypeId})`,
    reason: `Smart Campaign: ${invocation.campaignId}, Step Seq ID: 1`,
    campaignId: invocation.campaignId
  })

  const activityValues: Record<string, unknown> = { ...body.activityDefaults, ...item.activityData }
  const definition = service.definition
  // Boolean null means false (reference §1.3 "Data Types").
  const attributes: ActivityAttribute[] = [{ name: 'success', value: activityValues.success === true }]
  for (const reserved of ['reason', 'errorCode']) {
    if (activityValues[reserved] !== undefined && activityValues[reserved] !== null) attributes.push({ name: reserved, value: activityValues[reserved] })
  }
  // Undeclared keys do not show in the activity [WFP] (§1.7).
  for (const attribute of definition.callbackPayloadDef.attributes ?? []) {
    if (activityValues[attribute.apiName] !== undefined) attributes.push({ name: attribute.apiName, value: activityValues[attribute.apiName] })
  }
  for (const attribute of definition.invocationPayloadDef.flowAttributes ?? []) {
    if (attribute.apiName === definition.primaryAttribute) continue
    attributes.push({ name: attribute.apiName, value: invocation.flowStepContext[attribute.apiName] ?? null })
  }
  const primary = invocation.flowStepContext[definition.primaryAttribute]
  deps.activities.append({
    leadId,
    activityDate: toMarketoDateTime(at),
    activityTypeId: service.activityTypeId,
    campaignId: invocation.campaignId,
    primaryAttributeValue: primary === undefined || primary === null ? null : String(primary),
    attributes
  })
  if (activityValues.success !== true && typeof activityValues.errorCode === 'string') {
    deps.serviceLog.record({
      at: at.toISOString(),
      level: 'record',
      code: activityValues.errorCode,
      message: typeof activityValues.reason === 'string' ? activityValues.reason : '',
      token: invocation.token,
      leadId
    })
  }
}

/**
 * The declared incoming fields present in `leadData`, keyed by the Marketo field they map to.
 * JSON null leaves a field alone; the string "null" clears it (known issue, reference §1.3).
 * With `userDrivenMapping` the keys already are Marketo names; known fields are accepted.
 */
function incomingFieldValues (leadValues: Readonly<Record<string, unknown>>, invocation: InvocationRecord, fields: LeadFieldCatalog): Record<string, unknown> {
  const callbackDef = invocation.service.definition.callbackPayloadDef
  const mappings = callbackDef.userDrivenMapping === true
    ? Object.keys(leadValues).filter((name) => name !== 'id' && fields.get(name)?.readOnly === false).map((name) => ({ from: name, to: name }))
    : (callbackDef.fields ?? []).map((mapping) => ({ from: mapping.serviceAttribute, to: marketoFieldOf(mapping) }))
  const writes: Record<string, unknown> = {}
  for (const { from, to } of mappings) {
    const value = leadValues[from]
    if (value === undefined || value === null) continue
    writes[to] = value === 'null' ? null : truncated(value, fields.get(to)?.dataType)
  }
  return writes
}

function truncated (value: unknown, dataType: string | undefined): unknown {
  const limit = dataType === undefined ? undefined : MAX_STRING_BYTES[dataType]
  if (typeof value !== 'string' || limit === undefined || Buffer.byteLength(value) <= limit) return value
  let text = value
  while (Buffer.byteLength(text) > limit) text = text.slice(0, -1)
  return text
}
