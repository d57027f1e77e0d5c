import { ActivityLog, CHANGE_DATA_VALUE_ACTIVITY_TYPE_ID, NEW_LEAD_ACTIVITY_TYPE_ID, type ActivityRecord } from './activity-log.ts'
import type { LeadFieldCatalog } from './lead-fields.ts'
import { toMarketoDate, toMarketoDateTime } from './marketo-datetime.ts'

/**
 * The emulated lead database: persons keyed by integer id, field values under Marketo REST names.
 * Every write goes through here so the activity log sees it the way Marketo logs it: New Lead (12)
 * on create, one Data Value Change (13) per changed field on update (reference §2.6, §1.8).
 */

export type Person = Readonly<Record<string, unknown>> & {
  readonly id: number
  readonly createdAt: string
  readonly updatedAt: string
}

/** Why a field changed; becomes the Data Value Change's Reason/Source attributes (reference §1.8, §2.6). */
export interface ChangeSource {
  readonly reason: string
  readonly source: string
  readonly campaignId?: number
  /**
   * REST writes only: the API method and the request that made the change, shown on the activity
   * as "Api Method Name" and "Request Id" — the attribute names real instances export for Change
   * Data Value (third-party: Airbyte's Marketo source normalises exactly these headers; Adobe's
   * page shows only Reason/Source "Web service API"). How a sync recognises its own writes.
   */
  readonly apiMethodName?: string
  readonly requestId?: string
}

/**
 * A marketer editing the person detail page. Adobe documents no Reason/Source text for UI edits;
 * what matters to a sync is that it is neither "Web service API" nor carries an API method name.
 */
export const PERSON_DETAIL_EDIT: ChangeSource = { reason: 'Person detail edit', source: 'Marketo UI' }

/** Real ids are opaque integers; starting at 1000 keeps them clearly apart from counts in test output. */
const FIRST_PERSON_ID = 1000
/** Maintained by the store, never taken from input. */
const SYSTEM_FIELDS = new Set(['id', 'createdAt', 'updatedAt'])

export const SEED_SOURCE: ChangeSource = { reason: 'Emulator seed', source: 'Marketo emulator' }

export class PersonStore {
  readonly #persons = new Map<number, Record<string, unknown>>()
  /**
   * Per looked-up field, the ids holding each normalised value: Get Leads and Sync Leads look up
   * 300 values a call (reference §2.5), so a scan per value made a first sync of 100,000 persons
   * quadratic. Built on a field's first look-up, kept right by create, update and remove.
   */
  readonly #indexes = new Map<string, Map<string, Set<number>>>()
  readonly #fields: LeadFieldCatalog
  readonly #activities: ActivityLog
  readonly #now: () => Date
  #nextId = FIRST_PERSON_ID

  constructor (options: { fields: LeadFieldCatalog, activities: ActivityLog, now: () => Date }) {
    this.#fields = options.fields
    this.#activities = options.activities
    this.#now = options.now
  }

  /** Unknown field names become custom string fields, so tests and the launcher can seed freely. */
  create (fields: Readonly<Record<string, unknown>>, source: ChangeSource = SEED_SOURCE): number {
    const id = this.#nextId++
    const now = this.#now()
    const timestamp = toMarketoDateTime(now)
    const person: Record<string, unknown> = { id }
    for (const [name, value] of Object.entries(fields)) {
      if (SYSTEM_FIELDS.has(name) || value === undefined) continue
      this.#fields.ensure(name)
      person[name] = value
    }
    person.createdAt = timestamp
    person.updatedAt = timestamp
    this.#persons.set(id, person)
    for (const [field, index] of this.#indexes) addToIndex(index, field, person[field], id)
    this.#activities.append({
      leadId: id,
      activityDate: timestamp,
      activityTypeId: NEW_LEAD_ACTIVITY_TYPE_ID,
      ...(source.campaignId === undefined ? {} : { campaignId: source.campaignId }),
      primaryAttributeValueId: id,
      primaryAttributeValue: displayNameOf(person),
      attributes: [{ name: 'Created Date', value: toMarketoDate(now) }, { name: 'Source Type', value: source.source }]
    })
    return id
  }

  get (id: number): Person | undefined {
    const person = this.#persons.get(id)
    return person === undefined ? undefined : snapshot(person)
  }

  /** Marketo matches email addresses case-insensitively; the lowest id wins when several match. */
  findByEmail (email: string): Person | undefined {
    return this.findBy('email', email)[0]
  }

  /** Persons whose `field` equals `value` (strings compared as Marketo's filter values arrive: as text). */
  findBy (field: string, value: unknown): Person[] {
    const wanted = normalizeForMatch(field, value)
    if (field === 'id') {
      // The store's own key: only the id's canonical text matches, as the comparison of texts did.
      const id = Number(wanted)
      const person = String(id) === wanted ? this.#persons.get(id) : undefined
      return person === undefined ? [] : [snapshot(person)]
    }
    const ids = this.#indexFor(field).get(wanted)
    if (ids === undefined) return []
    // Ascending ids are the store's insertion order: the lowest id first, as before.
    return [...ids].sort((a, b) => a - b).map((id) => snapshot(this.#persons.get(id)!))
  }

  #indexFor (field: string): Map<string, Set<number>> {
    let index = this.#indexes.get(field)
    if (index === undefined) {
      index = new Map()
      for (const person of this.#persons.values()) addToIndex(index, field, person[field], person.id as number)
      this.#indexes.set(field, index)
    }
    return index
  }

  list (): Person[] {
    return [...this.#persons.values()].map(snapshot)
  }

  /**
   * Removes a person as a marketer's delete in Marketo does (Delete Leads is not served yet): later
   * REST writes by id are skipped with 1004 "Lead not found". True when there was one.
   */
  remove (id: number): boolean {
    const person = this.#persons.get(id)
    if (person === undefined) return false
    for (const [field, index] of this.#indexes) removeFromIndex(index, field, person[field], id)
    return this.#persons.delete(id)
  }

  activities (id: number): ActivityRecord[] {
    return this.#activities.forLead(id)
  }

  /**
   * Writes `changes` onto person `id`, logging one Data Value Change per field whose value really
   * changed (Marketo logs changes, not writes). Returns the changed field names; [] when the
   * person does not exist.
   */
  update (id: number, changes: Readonly<Record<string, unknown>>, source: ChangeSource): string[] {
    const person = this.#persons.get(id)
    if (person === undefined) return []
    const timestamp = toMarketoDateTime(this.#now())
    const changed: string[] = []
    for (const [name, newValue] of Object.entries(changes)) {
      if (SYSTEM_FIELDS.has(name) || newValue === undefined) continue
      const oldValue = person[name] ?? null
      if (sameValue(oldValue, newValue)) continue
      const field = this.#fields.ensure(name)
      this.#setField(person, name, newValue)
      changed.push(name)
      this.#activities.append({
        leadId: id,
        activityDate: timestamp,
        activityTypeId: CHANGE_DATA_VALUE_ACTIVITY_TYPE_ID,
        ...(source.campaignId === undefined ? {} : { campaignId: source.campaignId }),
        primaryAttributeValueId: field.id,
        primaryAttributeValue: field.displayName,
        attributes: [
          { name: 'New Value', value: newValue },
          { name: 'Old Value', value: oldValue },
          { name: 'Reason', value: source.reason },
          { name: 'Source', value: source.source },
          // Get Lead Changes' documented example carries the person id as "Lead ID" (reference §2.6).
          { name: 'Lead ID', value: id },
          ...(source.apiMethodName === undefined ? [] : [{ name: 'Api Method Name', value: source.apiMethodName }]),
          ...(source.requestId === undefined ? [] : [{ name: 'Request Id', value: source.requestId }])
        ],
        fields: [{ id: field.id, name, newValue, oldValue }]
      })
    }
    if (changed.length > 0) this.#setField(person, 'updatedAt', timestamp)
    return changed
  }

  /** Every change to a stored person's value goes through here, so its field's index follows it. */
  #setField (person: Record<string, unknown>, name: string, value: unknown): void {
    const index = this.#indexes.get(name)
    if (index !== undefined) {
      removeFromIndex(index, name, person[name], person.id as number)
      addToIndex(index, name, value, person.id as number)
    }
    person[name] = value
  }
}

function snapshot (person: Record<string, unknown>): Person {
  return { ...person } as Person
}

function displayNameOf (person: Record<string, unknown>): string {
  const name = [person.firstName, person.lastName].filter((part) => typeof part === 'string' && part !== '').join(' ')
  return name !== '' ? name : String(person.email ?? person.id)
}

function normalizeForMatch (field: string, value: unknown): string {
  const text = String(value)
  return field === 'email' ? text.toLowerCase() : text
}

/** Absent and null values match nothing, so they are not indexed. */
function addToIndex (index: Map<string, Set<number>>, field: string, value: unknown, id: number): void {
  if (value === undefined || value === null) return
  const key = normalizeForMatch(field, value)
  const ids = index.get(key)
  if (ids === undefined) index.set(key, new Set([id]))
  else ids.add(id)
}

function removeFromIndex (index: Map<string, Set<number>>, field: string, value: unknown, id: number): void {
  if (value === undefined || value === null) return
  const key = normalizeForMatch(field, value)
  const ids = index.get(key)
  if (ids === undefined) return
  ids.delete(id)
  if (ids.size === 0) index.delete(key)
}

function sameValue (a: unknown, b: unknown): boolean {
  return a === b || JSON.stringify(a) === JSON.stringify(b)
}
