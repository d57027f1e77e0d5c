import { CHANGE_DATA_VALUE_ACTIVITY_TYPE_ID, NEW_LEAD_ACTIVITY_TYPE_ID, type ActivityLog, type ActivityRecord } from './activity-log.ts'
import { decodeActivityCursor, encodeActivityCursor } from './paging-token.ts'
import { restErrors, type RestSuccess } from './rest-envelope.ts'
import { parseBatchSize, splitList } from './rest-leads.ts'

/**
 * Activities endpoints (reference §2.6): activity types, date-based paging tokens, Get Lead
 * Activities and Get Lead Changes. Pages may be short; clients loop while `moreResult` is true,
 * and a `nextPageToken` is always returned so they can poll for later activities.
 */

const MAX_ACTIVITY_TYPE_IDS = 10
const MAX_LEAD_IDS = 30

/** `GET /rest/v1/activities/types.json` */
export function getActivityTypes (activities: ActivityLog): RestSuccess {
  return { result: activities.types() }
}

/** `GET /rest/v1/activities/pagingtoken.json?sinceDatetime=` → `{nextPageToken}` with no result [PAGE]. */
export function getPagingToken (params: URLSearchParams): RestSuccess {
  const since = params.get('sinceDatetime')?.trim() ?? ''
  if (since === '') throw restErrors.blank('sinceDatetime')
  const sinceMs = Date.parse(since)
  if (Number.isNaN(sinceMs)) throw restErrors.invalidDate(since)
  return { nextPageToken: encodeActivityCursor({ sinceMs, afterActivityId: 0 }) }
}

/** `GET /rest/v1/activities.json?nextPageToken=&activityTypeIds=&leadIds=&batchSize=` */
export function getLeadActivities (params: URLSearchParams, activities: ActivityLog): RestSuccess {
  const typeIds = parseIdList(params.get('activityTypeIds'), 'activityTypeIds', MAX_ACTIVITY_TYPE_IDS)
  if (typeIds.length === 0) throw restErrors.blank('activityTypeIds')
  const leadIds = parseIdList(params.get('leadIds'), 'leadIds', MAX_LEAD_IDS)
  const selected = new Set(typeIds)
  return pageActivities(params, activities, (record) => selected.has(record.activityTypeId) && matchesLead(record, leadIds), withoutChangeFields)
}

/** `GET /rest/v1/activities/leadchanges.json?nextPageToken=&fields=&leadIds=&batchSize=` — New Lead and Data Value Change only [ACT]. */
export function getLeadChanges (params: URLSearchParams, activities: ActivityLog): RestSuccess {
  const fields = new Set(splitList(params.get('fields')))
  if (fields.size === 0) throw restErrors.blank('fields')
  const leadIds = parseIdList(params.get('leadIds'), 'leadIds', MAX_LEAD_IDS)
  return pageActivities(params, activities, (record) => {
    if (!matchesLead(record, leadIds)) return false
    if (record.activityTypeId === NEW_LEAD_ACTIVITY_TYPE_ID) return true
    return record.activityTypeId === CHANGE_DATA_VALUE_ACTIVITY_TYPE_ID &&
      (record.fields ?? []).some((field) => fields.has(field.name))
  }, (record) => onlyRequestedFields(record, fields))
}

/** "the fields whose changes you want" (reference §2.6): a change lists no other field. */
function onlyRequestedFields (record: ActivityRecord, fields: ReadonlySet<string>): ActivityRecord {
  if (record.fields === undefined) return record
  return { ...record, fields: record.fields.filter((field) => fields.has(field.name)) }
}

function pageActivities (
  params: URLSearchParams,
  activities: ActivityLog,
  include: (record: ActivityRecord) => boolean,
  present: (record: ActivityRecord) => unknown
): RestSuccess {
  const token = params.get('nextPageToken')?.trim() ?? ''
  if (token === '') throw restErrors.blank('nextPageToken')
  const cursor = decodeActivityCursor(token)
  const batchSize = parseBatchSize(params.get('batchSize'))
  const candidates = activities.all().filter((record) =>
    record.id > cursor.afterActivityId && Date.parse(record.activityDate) >= cursor.sinceMs && include(record))
  const page = candidates.slice(0, batchSize)
  const last = page.at(-1)
  return {
    result: page.map(present),
    moreResult: candidates.length > page.length,
    nextPageToken: encodeActivityCursor({ sinceMs: cursor.sinceMs, afterActivityId: last?.id ?? cursor.afterActivityId })
  }
}

function matchesLead (record: ActivityRecord, leadIds: readonly number[]): boolean {
  return leadIds.length === 0 || leadIds.includes(record.leadId)
}

function withoutChangeFields (record: ActivityRecord): unknown {
  const { fields: _changeFields, ...activity } = record
  return activity
}

function parseIdList (value: string | null, parameter: string, max: number): number[] {
  const items = splitList(value)
  if (items.length > max) throw restErrors.invalidData(`Too many ${parameter}, maximum is ${max}`)
  return items.map((item) => {
    const id = Number(item)
    if (!Number.isInteger(id)) throw restErrors.invalidData(`Invalid ${parameter} '${item}'`)
    return id
  })
}
