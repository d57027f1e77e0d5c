import type { LeadChangesPage } from './marketo-rest-client.ts'

/**
 * Marketo's lead-change feed (Get Lead Changes, marketo-rest-and-ssfs.md §2.6) read as what the
 * sync needs: per person, the latest value of each mapped field that changed, whether that change
 * came through the REST API (the echo signal), and whether the person is new. The folding is pure;
 * `readLeadChanges` is the one call around it.
 */

/** A field value as Get Lead Changes reports it (`LeadChangeField.newValue`; empty is `null`). */
export type MarketoChangeValue = string | number | boolean | null

export interface MarketoFieldChange {
  readonly value: MarketoChangeValue
  /** The activity's date as Marketo wrote it (whole seconds, §2.2). */
  readonly changedAt: string
  /**
   * The change was made through the REST API — by this service or by another integration: the
   * activity does not say which API user made it. Rule: the activity names an `Api Method Name`,
   * or its `Source` or `Reason` is "Web service API" (what Marketo logs for REST writes, §2.6's
   * Get Lead Changes example; instances that export the method name add `Api Method Name` and
   * `Request Id`). A marketer's edit, a form fill, a flow step or a list import carry neither.
   * So this alone never proves an echo: a change is ours only when it came through the API *and*
   * its value equals the last-synced state (issue 12 §6), which src/sync/field-merge.ts decides.
   */
  readonly madeThroughApi: boolean
  /** The REST request that made it (`Request Id`), when Marketo names one. */
  readonly apiRequestId?: string
}

export interface PersonChanges {
  /** Marketo's lead id. */
  readonly personId: number
  /**
   * A New Lead activity for this person is in the page. Marketo logs no Change Data Value for the
   * values a person is created with, so a new person's fields must be read (Get Leads by id).
   */
  readonly isNew: boolean
  /** The person was created through the REST API (same rule as `madeThroughApi`); false when not new. */
  readonly createdThroughApi: boolean
  /** Mapped fields that changed, by REST name: the latest change of each in the page. */
  readonly fields: Readonly<Record<string, MarketoFieldChange>>
}

/** Why an activity of the page gave nothing; the sync goes on with the rest and can report these. */
export type SkippedActivityReason = 'MALFORMED_ACTIVITY' | 'UNEXPECTED_ACTIVITY_TYPE' | 'UNREADABLE_FIELD_VALUE'

export interface SkippedActivity {
  /** `marketoGUID` (or `id`, or `#<position in page>`): never personal data. */
  readonly activityId: string
  readonly reason: SkippedActivityReason
}

export interface LeadChangeBatch {
  /** In order of each person's first activity in the page. */
  readonly persons: PersonChanges[]
  readonly skipped: SkippedActivity[]
}

export interface LeadChangeRead extends LeadChangeBatch {
  /** Saved once the changes are durably handled; the next read starts there (issue 12 §10). */
  readonly nextPageToken: string
  /** Another page is ready now; false means the feed is caught up until the next poll. */
  readonly moreResult: boolean
}

/** The one call the reading step needs: a MarketoRestClient, or anything that reads pages the same way. */
export interface LeadChangeSource {
  getLeadChanges: (pageToken: string, fields: readonly string[], batchSize?: number) => Promise<LeadChangesPage>
}

/** Standard activity type ids (reference §2.6, Adobe's lead-activity table). */
export const NEW_LEAD_ACTIVITY_TYPE_ID = 12
export const CHANGE_DATA_VALUE_ACTIVITY_TYPE_ID = 13

const WEB_SERVICE_API = 'web service api'

/**
 * Reads one page of the feed from `pageToken`, asking for the mapped `fields` only (Marketo reports
 * changes of those alone, so unmapped churn costs nothing), and folds it.
 */
export async function readLeadChanges (
  source: LeadChangeSource,
  request: { readonly pageToken: string, readonly fields: readonly string[], readonly batchSize?: number }
): Promise<LeadChangeRead> {
  const page = await source.getLeadChanges(request.pageToken, request.fields, request.batchSize)
  return { ...foldLeadChanges(page.activities, request.fields), nextPageToken: page.nextPageToken, moreResult: page.moreResult }
}

/**
 * Folds a page of Get Lead Changes activities into one entry per person: for each field in
 * `fields`, the latest change wins — by `activityDate`, and within one date (Marketo's dates are
 * whole seconds) by position, since the feed lists activities in the order they happened (§2.6).
 * Changes of fields not in `fields` are ignored; an activity that cannot be read is skipped and
 * named, never allowed to stop the page.
 */
export function foldLeadChanges (activities: readonly unknown[], fields: readonly string[]): LeadChangeBatch {
  const wanted = new Set(fields)
  const persons = new Map<number, { isNew: boolean, createdThroughApi: boolean, fields: Map<string, { change: MarketoFieldChange, at: number }> }>()
  const skipped: SkippedActivity[] = []
  const personEntry = (personId: number) => {
    let entry = persons.get(personId)
    if (entry === undefined) {
      entry = { isNew: false, createdThroughApi: false, fields: new Map() }
      persons.set(personId, entry)
    }
    return entry
  }

  activities.forEach((raw, position) => {
    const activity = readActivity(raw)
    const activityId = activityIdOf(raw, position)
    if (activity === undefined) {
      skipped.push({ activityId, reason: 'MALFORMED_ACTIVITY' })
      return
    }
    if (activity.typeId === NEW_LEAD_ACTIVITY_TYPE_ID) {
      const entry = personEntry(activity.personId)
      entry.isNew = true
      entry.createdThroughApi = activity.throughApi
      return
    }
    if (activity.typeId !== CHANGE_DATA_VALUE_ACTIVITY_TYPE_ID) {
      skipped.push({ activityId, reason: 'UNEXPECTED_ACTIVITY_TYPE' })
      return
    }
    const changes = activity.changedFields.filter((field) => wanted.has(field.name))
    if (changes.length === 0) return
    if (changes.some((field) => !isChangeValue(field.newValue))) {
      skipped.push({ activityId, reason: 'UNREADABLE_FIELD_VALUE' })
      return
    }
    const entry = personEntry(activity.personId)
    for (const field of changes) {
      const held = entry.fields.get(field.name)
      // Strictly earlier only: at an equal date the later position in the page is the later change.
      if (held !== undefined && held.at > activity.at) continue
      entry.fields.set(field.name, {
        at: activity.at,
        change: {
          value: field.newValue as MarketoChangeValue,
          changedAt: activity.date,
          madeThroughApi: activity.throughApi,
          ...(activity.requestId === undefined ? {} : { apiRequestId: activity.requestId })
        }
      })
    }
  })

  return {
    persons: [...persons].map(([personId, entry]) => ({
      personId,
      isNew: entry.isNew,
      createdThroughApi: entry.isNew && entry.createdThroughApi,
      fields: Object.fromEntries([...entry.fields].map(([name, held]) => [name, held.change]))
    })),
    skipped
  }
}

/**
 * Whether an activity's attributes say it came through the REST API (the rule is documented on
 * `MarketoFieldChange.madeThroughApi`). `Source Type` is where a New Lead names its origin (§2.6).
 */
export function madeThroughApi (attributes: ReadonlyMap<string, unknown>): boolean {
  const method = attributes.get('Api Method Name')
  if (typeof method === 'string' && method.trim() !== '') return true
  return ['Source', 'Reason', 'Source Type'].some((name) => {
    const value = attributes.get(name)
    return typeof value === 'string' && value.trim().toLowerCase() === WEB_SERVICE_API
  })
}

interface ReadActivity {
  readonly typeId: number
  readonly personId: number
  readonly date: string
  readonly at: number
  readonly throughApi: boolean
  readonly requestId: string | undefined
  readonly changedFields: ReadonlyArray<{ readonly name: string, readonly newValue: unknown }>
}

/** The `LeadChange` shape (§2.6): `leadId`, `activityDate`, `activityTypeId`, `attributes` required; `fields` on changes. */
function readActivity (raw: unknown): ReadActivity | undefined {
  if (!isObject(raw)) return undefined
  const { leadId, activityDate, activityTypeId, attributes, fields } = raw
  if (!Number.isSafeInteger(leadId) || !Number.isSafeInteger(activityTypeId) || typeof activityDate !== 'string') return undefined
  const at = parseActivityDate(activityDate)
  if (Number.isNaN(at) || !Array.isArray(attributes)) return undefined
  const attributeValues = new Map<string, unknown>()
  for (const attribute of attributes) {
    if (isObject(attribute) && typeof attribute.name === 'string') attributeValues.set(attribute.name, attribute.value)
  }
  const changedFields: Array<{ name: string, newValue: unknown }> = []
  if (fields !== undefined) {
    if (!Array.isArray(fields)) return undefined
    for (const field of fields) {
      if (!isObject(field) || typeof field.name !== 'string') return undefined
      // An absent newValue is an emptied field, as an absent lead field is null (§2.2).
      changedFields.push({ name: field.name, newValue: field.newValue ?? null })
    }
  }
  const requestId = attributeValues.get('Request Id')
  return {
    typeId: activityTypeId as number,
    personId: leadId as number,
    date: activityDate,
    at,
    throughApi: madeThroughApi(attributeValues),
    requestId: typeof requestId === 'string' && requestId !== '' ? requestId : undefined,
    changedFields
  }
}

/**
 * Activity dates come as `2023-01-16T23:32:19Z` or `2014-09-17T22:31:49+0000` (§2.2); the second
 * form's offset has no colon, which ECMAScript's date format does not promise to read.
 */
function parseActivityDate (value: string): number {
  return Date.parse(value.replace(/([+-]\d\d)(\d\d)$/, '$1:$2'))
}

/** `marketoGUID` is replacing `id` as the unique key, and `id` may be absent (§2.6). */
function activityIdOf (raw: unknown, position: number): string {
  if (isObject(raw)) {
    if (typeof raw.marketoGUID === 'string' && raw.marketoGUID !== '') return raw.marketoGUID
    if (Number.isSafeInteger(raw.id)) return String(raw.id)
  }
  return `#${position}`
}

function isChangeValue (value: unknown): boolean {
  return value === null || ['string', 'number', 'boolean'].includes(typeof value)
}

function isObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
