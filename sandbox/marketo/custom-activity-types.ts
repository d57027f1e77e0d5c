import type { ActivityLog, ActivityTypeDefinition } from './activity-log.ts'
import { toMarketoDateTime } from './marketo-datetime.ts'
import { restErrors } from './rest-envelope.ts'

/**
 * The instance's custom activity types (reference §2.7, Adobe "Custom Activities"): created as a
 * draft with an `apiName`, listed by the metadata API in every status, and usable for activities
 * only once approved — approval is what publishes the type to Get Activity Types and the activity
 * log. At most 10 types (1027) and 20 secondary attributes each (1028).
 */

export const MAX_CUSTOM_ACTIVITY_TYPES = 10
export const MAX_CUSTOM_ACTIVITY_ATTRIBUTES = 20
/** The data types a custom activity attribute may have (reference §2.7). */
export const CUSTOM_ATTRIBUTE_DATA_TYPES = ['string', 'boolean', 'integer', 'float', 'link', 'email', 'currency', 'date', 'datetime', 'phone', 'text'] as const

export interface CustomActivityAttribute {
  readonly apiName: string
  readonly name: string
  readonly description?: string
  readonly dataType: string
}

export interface CustomActivityType {
  readonly id: number
  readonly apiName: string
  readonly name: string
  readonly description?: string
  readonly triggerName: string
  readonly filterName: string
  readonly primaryAttribute: CustomActivityAttribute
  readonly attributes: readonly CustomActivityAttribute[]
  readonly status: 'draft' | 'approved'
  readonly createdAt: string
  readonly updatedAt: string
}

export class CustomActivityTypes {
  readonly #types = new Map<string, CustomActivityType>()
  readonly #activities: ActivityLog
  readonly #now: () => Date

  constructor (options: { activities: ActivityLog, now: () => Date }) {
    this.#activities = options.activities
    this.#now = options.now
  }

  list (): CustomActivityType[] {
    return [...this.#types.values()]
  }

  byApiName (apiName: string): CustomActivityType | undefined {
    return this.#types.get(apiName)
  }

  /** The approved type with this activity type id; drafts cannot carry activities. */
  approvedById (id: number): CustomActivityType | undefined {
    return this.list().find((type) => type.id === id && type.status === 'approved')
  }

  /** `POST /rest/v1/activities/external/type.json` — throws the Marketo error that refuses the request. */
  create (body: unknown): CustomActivityType {
    const request = asRecord(body)
    if (request === undefined) throw restErrors.invalidJson()
    const apiName = requiredText(request, 'apiName')
    const name = requiredText(request, 'name')
    const triggerName = requiredText(request, 'triggerName')
    const filterName = requiredText(request, 'filterName')
    const primary = asRecord(request.primaryAttribute)
    if (primary === undefined) throw restErrors.blank('primaryAttribute')
    // The primary attribute is a string: Adobe's examples create it with no dataType.
    const primaryAttribute = parseAttribute(primary, 'primaryAttribute', 'string')
    const attributes = parseAttributes(request.attributes)
    if (this.#types.has(apiName)) throw restErrors.objectExists(`Activity type '${apiName}'`)
    if (this.#types.size >= MAX_CUSTOM_ACTIVITY_TYPES) throw restErrors.activityTypeLimit()
    const timestamp = toMarketoDateTime(this.#now())
    const type: CustomActivityType = {
      id: this.#activities.reserveTypeId(),
      apiName,
      name,
      ...(typeof request.description === 'string' ? { description: request.description } : {}),
      triggerName,
      filterName,
      primaryAttribute,
      attributes,
      status: 'draft',
      createdAt: timestamp,
      updatedAt: timestamp
    }
    this.#types.set(apiName, type)
    return type
  }

  /** `POST /rest/v1/activities/external/type/{apiName}/approve.json` — publishes the type (reference §2.7). */
  approve (apiName: string): CustomActivityType {
    const type = this.#types.get(apiName)
    if (type === undefined) throw restErrors.objectNotFound(`Activity type '${apiName}'`)
    const approved: CustomActivityType = { ...type, status: 'approved', updatedAt: toMarketoDateTime(this.#now()) }
    this.#types.set(apiName, approved)
    this.#activities.publishType(asActivityTypeDefinition(approved))
    return approved
  }
}

/** How Get Activity Types shows a custom type: like a standard one, not flagged (reference §2.6). */
function asActivityTypeDefinition (type: CustomActivityType): ActivityTypeDefinition {
  return {
    id: type.id,
    name: type.name,
    description: type.description ?? '',
    primaryAttribute: { name: type.primaryAttribute.name, dataType: type.primaryAttribute.dataType },
    attributes: type.attributes.map((attribute) => ({ name: attribute.name, dataType: attribute.dataType }))
  }
}

function parseAttributes (value: unknown): CustomActivityAttribute[] {
  if (value === undefined) return []
  if (!Array.isArray(value)) throw restErrors.invalidData('attributes must be an array')
  if (value.length > MAX_CUSTOM_ACTIVITY_ATTRIBUTES) throw restErrors.fieldLimit()
  const attributes = value.map((item, index) => {
    const attribute = asRecord(item)
    if (attribute === undefined) throw restErrors.invalidData(`attributes[${index}] must be an object`)
    return parseAttribute(attribute, `attributes[${index}]`)
  })
  const apiNames = new Set(attributes.map((attribute) => attribute.apiName))
  if (apiNames.size !== attributes.length) throw restErrors.invalidData('attribute apiNames must be unique')
  return attributes
}

function parseAttribute (attribute: Record<string, unknown>, where: string, defaultDataType?: string): CustomActivityAttribute {
  const apiName = requiredText(attribute, 'apiName', where)
  const name = requiredText(attribute, 'name', where)
  const dataType = attribute.dataType ?? defaultDataType
  if (typeof dataType !== 'string' || !(CUSTOM_ATTRIBUTE_DATA_TYPES as readonly string[]).includes(dataType)) {
    throw restErrors.invalidData(`Invalid dataType '${String(dataType)}' for ${where}`)
  }
  return {
    apiName,
    name,
    ...(typeof attribute.description === 'string' ? { description: attribute.description } : {}),
    dataType
  }
}

function requiredText (record: Record<string, unknown>, key: string, where?: string): string {
  const value = record[key]
  if (typeof value !== 'string' || value.trim() === '') throw restErrors.blank(where === undefined ? key : `${where}.${key}`)
  return value
}

export function asRecord (value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? value as Record<string, unknown> : undefined
}
