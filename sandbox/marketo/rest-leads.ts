import type { LeadFieldCatalog } from './lead-fields.ts'
import { decodeLeadOffset, encodeLeadOffset } from './paging-token.ts'
import type { ChangeSource, Person, PersonStore } from './person-store.ts'
import { restErrors, type RestSuccess } from './rest-envelope.ts'

/**
 * Leads endpoints (reference §2.5): Get Leads by Filter Type, Get Lead by Id, Sync Leads,
 * Describe / Describe2.
 */

export interface LeadsDependencies {
  readonly persons: PersonStore
  readonly fields: LeadFieldCatalog
}

/** Get Leads' default field list [LEADS]. */
const DEFAULT_LEAD_FIELDS = ['id', 'email', 'updatedAt', 'createdAt', 'firstName', 'lastName']
const MAX_FILTER_VALUES = 300
const MAX_BATCH_SIZE = 300
const MAX_SYNC_RECORDS = 300
const SYNC_ACTIONS = ['createOnly', 'updateOnly', 'createOrUpdate', 'createDuplicate'] as const
type SyncAction = typeof SYNC_ACTIONS[number]

/**
 * The Reason/Source Marketo logs for REST writes (reference §2.6, Get Lead Changes example), with
 * the API method and request behind the change (see `ChangeSource`). `syncLead` is the method name
 * real exports show for Sync Leads (inferred).
 */
function webServiceApi (requestId: string): ChangeSource {
  return { reason: 'Web service API', source: 'Web service API', apiMethodName: 'syncLead', requestId }
}

/** `GET /rest/v1/leads.json?filterType=&filterValues=&fields=&batchSize=&nextPageToken=` */
export function getLeadsByFilterType (params: URLSearchParams, deps: LeadsDependencies): RestSuccess {
  const filterType = params.get('filterType')?.trim() ?? ''
  if (filterType === '') throw restErrors.blank('filterType')
  const filterValues = splitList(params.get('filterValues'))
  if (filterValues.length === 0) throw restErrors.blank('filterValues')
  if (filterValues.length > MAX_FILTER_VALUES) throw restErrors.invalidData(`Too many filterValues, maximum is ${MAX_FILTER_VALUES}`)
  if (!deps.fields.has(filterType)) throw restErrors.fieldNotFound(filterType)
  const fields = requestedFields(params, deps.fields)
  const batchSize = parseBatchSize(params.get('batchSize'))
  const token = params.get('nextPageToken')
  const offset = token === null || token === '' ? 0 : decodeLeadOffset(token)

  const seen = new Set<number>()
  const matches: Person[] = []
  for (const value of filterValues) {
    for (const person of deps.persons.findBy(filterType, value)) {
      if (seen.has(person.id)) continue
      seen.add(person.id)
      matches.push(person)
    }
  }
  const page = matches.slice(offset, offset + batchSize).map((person) => projectPerson(person, fields))
  const hasMore = offset + batchSize < matches.length
  return {
    result: page,
    ...(hasMore ? { moreResult: true, nextPageToken: encodeLeadOffset(offset + batchSize) } : {})
  }
}

/** `GET /rest/v1/lead/{id}.json?fields=` — "always returns one record in the first position" [LEADS]; unknown id → empty result (inferred). */
export function getLeadById (id: number, params: URLSearchParams, deps: LeadsDependencies): RestSuccess {
  const fields = requestedFields(params, deps.fields)
  const person = deps.persons.get(id)
  return { result: person === undefined ? [] : [projectPerson(person, fields)] }
}

export type SyncLeadResult =
  | { readonly id: number, readonly status: 'created' | 'updated' }
  | { readonly status: 'skipped', readonly reasons: ReadonlyArray<{ readonly code: string, readonly message: string }> }

/** `POST /rest/v1/leads.json` with `{action, lookupField, input[]}`; results in input order [ERR]. */
export function syncLeads (body: unknown, requestId: string, deps: LeadsDependencies): RestSuccess {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw restErrors.invalidJson()
  const request = body as Record<string, unknown>
  const input = request.input
  if (!Array.isArray(input) || input.length === 0) throw restErrors.blank('input')
  if (input.length > MAX_SYNC_RECORDS) throw restErrors.invalidData(`Too many records in input, maximum is ${MAX_SYNC_RECORDS}`)
  const action = (request.action ?? 'createOrUpdate') as SyncAction
  if (!SYNC_ACTIONS.includes(action)) throw restErrors.invalidData(`Invalid action '${String(request.action)}'`)
  const lookupField = typeof request.lookupField === 'string' && request.lookupField !== '' ? request.lookupField : 'email'
  if (!deps.fields.has(lookupField)) throw restErrors.fieldNotFound(lookupField)

  const source = webServiceApi(requestId)
  const result = input.map((record: unknown) => syncOneLead(record, action, lookupField, source, deps))
  return { result }
}

function syncOneLead (record: unknown, action: SyncAction, lookupField: string, source: ChangeSource, deps: LeadsDependencies): SyncLeadResult {
  if (typeof record !== 'object' || record === null || Array.isArray(record)) return skipped('1003', 'Invalid data')
  const fields = record as Record<string, unknown>
  for (const name of Object.keys(fields)) {
    if (!deps.fields.has(name)) return skipped('1006', `Field '${name}' not found`)
  }
  // "`id` only with updateOnly" (reference §2.5); 1003 is the documented reason (§2.3).
  if (fields.id !== undefined && (action === 'createOnly' || action === 'createDuplicate')) return skipped('1003', 'Invalid data')
  if (typeof fields.email === 'string' && !/^[\x20-\x7e]*$/.test(fields.email)) return skipped('1003', 'Invalid data')

  const writable = writableFields(fields, deps.fields)
  if (action === 'createDuplicate') return created(deps.persons.create(writable, source))

  const lookupValue = fields[lookupField]
  const matches = lookupValue === undefined || lookupValue === null || lookupValue === '' ? [] : deps.persons.findBy(lookupField, lookupValue)
  switch (action) {
    case 'createOnly':
      if (matches.length > 0) return skipped('1005', 'Lead already exists')
      return created(deps.persons.create(writable, source))
    case 'updateOnly':
      if (matches.length === 0) return skipped('1004', 'Lead not found')
      if (matches.length > 1) return skipped('1007', 'Multiple leads match the lookup criteria')
      return updated(matches[0]!.id, writable, source, deps)
    case 'createOrUpdate':
      if (matches.length > 1) return skipped('1007', 'Multiple leads match the lookup criteria')
      if (matches.length === 1) return updated(matches[0]!.id, writable, source, deps)
      return created(deps.persons.create(writable, source))
  }
}

function created (id: number): SyncLeadResult {
  return { id, status: 'created' }
}

function updated (id: number, writable: Record<string, unknown>, source: ChangeSource, deps: LeadsDependencies): SyncLeadResult {
  deps.persons.update(id, writable, source)
  return { id, status: 'updated' }
}

function skipped (code: string, message: string): SyncLeadResult {
  return { status: 'skipped', reasons: [{ code, message }] }
}

/** Read-only fields (id, createdAt, updatedAt) are lookup keys at most, never written. */
function writableFields (fields: Record<string, unknown>, catalog: LeadFieldCatalog): Record<string, unknown> {
  return Object.fromEntries(Object.entries(fields).filter(([name]) => catalog.get(name)?.readOnly === false))
}

/** `GET /rest/v1/leads/describe.json` — `{id, displayName, dataType, length?, rest, soap}` per field [LEADS][MAPI]. */
export function describeLeads (deps: LeadsDependencies): RestSuccess {
  return {
    result: deps.fields.list().map((field) => ({
      id: field.id,
      displayName: field.displayName,
      dataType: field.dataType,
      ...(field.length === undefined ? {} : { length: field.length }),
      rest: { name: field.name, readOnly: field.readOnly },
      soap: { name: field.name.charAt(0).toUpperCase() + field.name.slice(1), readOnly: field.readOnly }
    }))
  }
}

/** `GET /rest/v1/leads/describe2.json` [MAPI][RUD]. */
export function describeLeads2 (deps: LeadsDependencies): RestSuccess {
  return {
    result: [{
      name: 'API Lead',
      searchableFields: [['email'], ['id']],
      fields: deps.fields.list().map((field) => ({
        name: field.name,
        displayName: field.displayName,
        dataType: field.dataType,
        ...(field.length === undefined ? {} : { length: field.length }),
        updateable: !field.readOnly,
        crmManaged: false
      }))
    }]
  }
}

/** Requested-but-empty fields come back as null [GRP][LEADS]; `id` is always included. */
function projectPerson (person: Person, fields: readonly string[]): Record<string, unknown> {
  const projected: Record<string, unknown> = { id: person.id }
  for (const field of fields) projected[field] = person[field] ?? null
  return projected
}

function requestedFields (params: URLSearchParams, catalog: LeadFieldCatalog): string[] {
  const fields = splitList(params.get('fields'))
  if (fields.length === 0) return DEFAULT_LEAD_FIELDS
  for (const field of fields) {
    if (!catalog.has(field)) throw restErrors.fieldNotFound(field)
  }
  return fields
}

export function parseBatchSize (value: string | null): number {
  if (value === null || value === '') return MAX_BATCH_SIZE
  const size = Number(value)
  if (!Number.isInteger(size) || size < 1 || size > MAX_BATCH_SIZE) throw restErrors.invalidData(`Invalid batchSize '${value}'`)
  return size
}

export function splitList (value: string | null): string[] {
  return (value ?? '').split(',').map((item) => item.trim()).filter((item) => item !== '')
}
