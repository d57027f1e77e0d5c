/**
 * The person activity log and the activity types the instance knows (reference §2.6). Standard
 * type ids come from Adobe's lead-activity table [EVT]; each installed SSFS service adds a type
 * (its id and REST-visible name are undocumented, §4 q5 — we number them from 100001, the id
 * Adobe's custom-activity examples use).
 */

export interface ActivityAttribute {
  readonly name: string
  readonly value: unknown
}

/** One changed field on a Data Value Change, as Get Lead Changes reports it (`LeadChangeField`, §2.6). */
export interface LeadChangeField {
  readonly id: number
  readonly name: string
  readonly newValue: unknown
  readonly oldValue: unknown
}

export interface ActivityRecord {
  readonly id: number
  readonly marketoGUID: string
  readonly leadId: number
  readonly activityDate: string
  readonly activityTypeId: number
  readonly campaignId?: number
  readonly primaryAttributeValueId?: number
  readonly primaryAttributeValue: string | null
  readonly attributes: readonly ActivityAttribute[]
  /** Data Value Change only; Get Lead Changes returns it, Get Lead Activities does not. */
  readonly fields?: readonly LeadChangeField[]
}

export interface ActivityTypeDefinition {
  readonly id: number
  readonly name: string
  readonly description: string
  readonly primaryAttribute: { readonly name: string, readonly dataType: string }
  readonly attributes: ReadonlyArray<{ readonly name: string, readonly dataType: string }>
}

export const NEW_LEAD_ACTIVITY_TYPE_ID = 12
export const CHANGE_DATA_VALUE_ACTIVITY_TYPE_ID = 13
export const FIRST_SSFS_ACTIVITY_TYPE_ID = 100001

const STANDARD_ACTIVITY_TYPES: readonly ActivityTypeDefinition[] = [
  {
    id: NEW_LEAD_ACTIVITY_TYPE_ID,
    name: 'New Lead',
    description: 'New person',
    primaryAttribute: { name: 'Lead ID', dataType: 'integer' },
    attributes: [{ name: 'Created Date', dataType: 'date' }, { name: 'Source Type', dataType: 'string' }]
  },
  {
    id: CHANGE_DATA_VALUE_ACTIVITY_TYPE_ID,
    name: 'Change Data Value',
    description: 'Changed attribute value for a person',
    primaryAttribute: { name: 'Attribute Name', dataType: 'integer' },
    attributes: [
      { name: 'New Value', dataType: 'string' },
      { name: 'Old Value', dataType: 'string' },
      { name: 'Reason', dataType: 'string' },
      { name: 'Source', dataType: 'string' },
      { name: 'Lead ID', dataType: 'integer' },
      { name: 'Api Method Name', dataType: 'string' },
      { name: 'Request Id', dataType: 'string' }
    ]
  }
]

export class ActivityLog {
  readonly #records: ActivityRecord[] = []
  readonly #types = new Map<number, ActivityTypeDefinition>(STANDARD_ACTIVITY_TYPES.map((type) => [type.id, type]))
  #nextId = 1
  #nextCustomTypeId = FIRST_SSFS_ACTIVITY_TYPE_ID

  append (record: Omit<ActivityRecord, 'id' | 'marketoGUID'>): ActivityRecord {
    const id = this.#nextId++
    const stored: ActivityRecord = { id, marketoGUID: String(id), ...record }
    this.#records.push(stored)
    return stored
  }

  /** In insertion order, which is also id and date order. */
  all (): readonly ActivityRecord[] {
    return this.#records
  }

  forLead (leadId: number): ActivityRecord[] {
    return this.#records.filter((record) => record.leadId === leadId)
  }

  registerType (type: Omit<ActivityTypeDefinition, 'id'>): ActivityTypeDefinition {
    const registered: ActivityTypeDefinition = { id: this.reserveTypeId(), ...type }
    this.publishType(registered)
    return registered
  }

  /**
   * A custom activity type gets its id when created as a draft, but only an approved type is
   * listed and can carry activities (reference §2.7): reserve first, publish on approval.
   */
  reserveTypeId (): number {
    return this.#nextCustomTypeId++
  }

  /** Lists `type` under its id, replacing an earlier version (a re-approved custom type). */
  publishType (type: ActivityTypeDefinition): void {
    this.#types.set(type.id, type)
  }

  type (id: number): ActivityTypeDefinition | undefined {
    return this.#types.get(id)
  }

  types (): ActivityTypeDefinition[] {
    return [...this.#types.values()]
  }
}
