import type { ActivityAttribute, ActivityLog } from './activity-log.ts'
import { asListing, asRecord, type CustomActivityType, type CustomActivityTypes } from './custom-activity-types.ts'
import { toMarketoDateTime } from './marketo-datetime.ts'
import type { PersonStore } from './person-store.ts'
import { restErrors, type RestSuccess } from './rest-envelope.ts'

/**
 * Custom activity endpoints (reference §2.7, Adobe "Custom Activities"): the metadata API for
 * types, and Add Custom Activities, which writes records of an approved type into persons'
 * activity logs. Results come back in input order; a refused record is `skipped` with `errors`
 * (not `reasons`, as Adobe's example for this endpoint shows).
 */

export interface CustomActivitiesDependencies {
  readonly customActivityTypes: CustomActivityTypes
  readonly activities: ActivityLog
  readonly persons: PersonStore
}

const MAX_ACTIVITIES_PER_CALL = 300
/** "attributes array > 65536 bytes" fails the record with 1049 (reference §2.3). */
const MAX_ATTRIBUTES_BYTES = 65_536

/** `GET /rest/v1/activities/external/types.json` — every status, drafts included, without attributes (Describe shows those). */
export function getCustomActivityTypes (deps: CustomActivitiesDependencies): RestSuccess {
  return { result: deps.customActivityTypes.list().map(asListing) }
}

/** `GET /rest/v1/activities/external/type/{apiName}/describe.json[?draft=true]` — the approved version, or the draft. */
export function describeCustomActivityType (apiName: string, params: URLSearchParams, deps: CustomActivitiesDependencies): RestSuccess {
  const type = deps.customActivityTypes.byApiName(apiName, { draft: params.get('draft') === 'true' })
  if (type === undefined) throw restErrors.objectNotFound(`Activity type '${apiName}'`)
  return { result: [type] }
}

/** `POST /rest/v1/activities/external/type.json` */
export function createCustomActivityType (body: unknown, deps: CustomActivitiesDependencies): RestSuccess {
  return { result: [deps.customActivityTypes.create(body)] }
}

/** `POST /rest/v1/activities/external/type/{apiName}/attributes/create.json` — added to the draft. */
export function createCustomActivityTypeAttributes (apiName: string, body: unknown, deps: CustomActivitiesDependencies): RestSuccess {
  return { result: [deps.customActivityTypes.createAttributes(apiName, body)] }
}

/** `POST /rest/v1/activities/external/type/{apiName}/approve.json` */
export function approveCustomActivityType (apiName: string, deps: CustomActivitiesDependencies): RestSuccess {
  return { result: [deps.customActivityTypes.approve(apiName)] }
}

export type AddActivityResult =
  | { readonly id: number, readonly marketoGUID: string, readonly status: 'added' }
  | { readonly status: 'skipped', readonly errors: ReadonlyArray<{ readonly code: string, readonly message: string }> }

/** `POST /rest/v1/activities/external.json` with `{input: [{leadId, activityDate, activityTypeId, primaryAttributeValue, attributes}]}` */
export function addCustomActivities (body: unknown, deps: CustomActivitiesDependencies): RestSuccess {
  const input = asRecord(body)?.input
  if (!Array.isArray(input) || input.length === 0) throw restErrors.blank('input')
  if (input.length > MAX_ACTIVITIES_PER_CALL) throw restErrors.invalidData(`Too many records in input, maximum is ${MAX_ACTIVITIES_PER_CALL}`)
  return { result: input.map((record: unknown) => addOneActivity(record, deps)) }
}

function addOneActivity (value: unknown, deps: CustomActivitiesDependencies): AddActivityResult {
  const record = asRecord(value)
  if (record === undefined) return skipped('1003', 'Invalid data')
  for (const required of ['leadId', 'activityDate', 'activityTypeId', 'primaryAttributeValue'] as const) {
    if (record[required] === undefined || record[required] === null || record[required] === '') return skipped('1002', `Missing value for required parameter '${required}'`)
  }
  const activityDateMs = typeof record.activityDate === 'string' ? Date.parse(record.activityDate) : Number.NaN
  if (Number.isNaN(activityDateMs)) return skipped('1001', `Invalid value '${String(record.activityDate)}'. Required of type 'datetime'`)
  // Only an approved type carries activities (reference §2.7), with its approved version's attributes
  // (a draft's are not live until approved); a draft-only type is as unknown as a missing one (inferred code).
  const type = deps.customActivityTypes.approvedById(Number(record.activityTypeId))
  if (type === undefined) return skipped('1013', `Activity type '${String(record.activityTypeId)}' not found`)
  const leadId = Number(record.leadId)
  if (!Number.isInteger(leadId) || deps.persons.get(leadId) === undefined) return skipped('1004', 'Lead not found')
  const attributes = record.attributes ?? []
  if (!Array.isArray(attributes)) return skipped('1003', 'Invalid data')
  if (Buffer.byteLength(JSON.stringify(attributes)) > MAX_ATTRIBUTES_BYTES) return skipped('1049', 'Failed to Create Activity')
  const resolved = resolveAttributes(attributes, type)
  if ('unknown' in resolved) return skipped('1006', `Field '${resolved.unknown}' not found`)

  const stored = deps.activities.append({
    leadId,
    activityDate: toMarketoDateTime(new Date(activityDateMs)),
    activityTypeId: type.id,
    primaryAttributeValue: String(record.primaryAttributeValue),
    attributes: resolved.attributes
  })
  return { id: stored.id, marketoGUID: stored.marketoGUID, status: 'added' }
}

/**
 * Each attribute names a declared secondary attribute by `apiName` (or its display `name`); the
 * activity log shows it under the display name, as Get Lead Activities shows every attribute.
 */
function resolveAttributes (attributes: readonly unknown[], type: CustomActivityType): { attributes: ActivityAttribute[] } | { unknown: string } {
  const resolved: ActivityAttribute[] = []
  for (const item of attributes) {
    const attribute = asRecord(item) ?? {}
    const key = typeof attribute.apiName === 'string' ? attribute.apiName : String(attribute.name)
    const declared = type.attributes.find((candidate) => candidate.apiName === key || candidate.name === key)
    if (declared === undefined) return { unknown: key }
    resolved.push({ name: declared.name, value: attribute.value ?? null })
  }
  return { attributes: resolved }
}

function skipped (code: string, message: string): AddActivityResult {
  return { status: 'skipped', errors: [{ code, message }] }
}
