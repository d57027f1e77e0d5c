import type { ActivityLog, ActivityTypeDefinition } from './activity-log.ts'
import { toMarketoDateTime } from './marketo-datetime.ts'
import { MarketoRestError, restErrors } from './rest-envelope.ts'

/**
 * The instance's custom activity types (reference §2.7, Adobe "Custom Activities"): created as a
 * draft with an `apiName`, listed by the metadata API in every status, and usable for activities
 * only once approved — approval is what publishes the type to Get Activity Types and the activity
 * log. At most 10 types (1027) and 20 secondary attributes each (1028).
 *
 * A type has up to two versions, as Marketo's assets do: the approved (live) one and a draft. "All
 * updates are implicitly applied to the draft version of the type. To reflect the changes in the
 * live version of the type, it must be approved" (Adobe "Custom Activities", Create type); secondary
 * attributes "are added, updated, and removed separately from the parent type" and "added to the
 * draft version" (Swagger `createCustomActivityTypeAttributesUsingPOST`). So an approved type whose
 * attributes change is "approved with draft", and activities keep using the approved version's
 * attributes until the draft is approved.
 */

export const MAX_CUSTOM_ACTIVITY_TYPES = 10
export const MAX_CUSTOM_ACTIVITY_ATTRIBUTES = 20
/** The data types a custom activity attribute may have (reference §2.7). */
export const CUSTOM_ATTRIBUTE_DATA_TYPES = ['string', 'boolean', 'integer', 'float', 'link', 'email', 'currency', 'date', 'datetime', 'phone', 'text'] as const

export type CustomActivityTypeStatus = 'draft' | 'approved' | 'approved with draft'

export interface CustomActivityAttribute {
  readonly apiName: string
  readonly name: string
  readonly description?: string
  readonly dataType: string
}

/** One version (approved or draft) of a type: what Describe Custom Activity Type shows. */
interface CustomActivityTypeVersion {
  readonly name: string
  readonly description?: string
  readonly triggerName: string
  readonly filterName: string
  readonly primaryAttribute: CustomActivityAttribute
  readonly attributes: readonly CustomActivityAttribute[]
}

interface StoredCustomActivityType {
  readonly id: number
  readonly apiName: string
  readonly createdAt: string
  readonly updatedAt: string
  readonly approved?: CustomActivityTypeVersion
  readonly draft?: CustomActivityTypeVersion
}

/** A type as Describe Custom Activity Type answers it: one version, with the type's status. */
export interface CustomActivityType extends CustomActivityTypeVersion {
  readonly id: number
  readonly apiName: string
  readonly status: CustomActivityTypeStatus
  readonly createdAt: string
  readonly updatedAt: string
}

/** A type as Get Custom Activity Types lists it: no attributes (Adobe "Custom Activities", Get types example). */
export type CustomActivityTypeListing = Omit<CustomActivityType, 'primaryAttribute' | 'attributes'>

export class CustomActivityTypes {
  readonly #types = new Map<string, StoredCustomActivityType>()
  readonly #activities: ActivityLog
  readonly #now: () => Date

  constructor (options: { activities: ActivityLog, now: () => Date }) {
    this.#activities = options.activities
    this.#now = options.now
  }

  /** Every type, each as its approved version where it has one (what activities use). */
  list (): CustomActivityType[] {
    return [...this.#types.values()].map((stored) => describe(stored, false))
  }

  /**
   * Describe Custom Activity Type: "By default you get the approved version of the activity. You can
   * optionally pass the `draft=true` parameter to retrieve the draft version" (Adobe "Custom
   * Activities", Describe types). A type never approved has only its draft, and one with no draft
   * only its approved version: each is then shown whatever `draft` asks (inferred).
   */
  byApiName (apiName: string, options: { draft?: boolean } = {}): CustomActivityType | undefined {
    const stored = this.#types.get(apiName)
    return stored === undefined ? undefined : describe(stored, options.draft === true)
  }

  /** The approved version of the type with this activity type id; a type never approved cannot carry activities. */
  approvedById (id: number): CustomActivityType | undefined {
    const stored = [...this.#types.values()].find((type) => type.id === id)
    return stored?.approved === undefined ? undefined : describe(stored, false)
  }

  /**
   * `POST /rest/v1/activities/external/type.json` — throws the Marketo error that refuses the request.
   * The body is `{apiName, name, description?, triggerName, filterName, primaryAttribute}` (reference
   * §2.7; Swagger `CustomActivityTypeRequest` has no other property): an `attributes` key is not part
   * of it and is ignored, as a property the schema does not know (so the type is created without
   * them; they are added with Create Custom Activity Type Attributes).
   */
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
    if (this.#types.has(apiName)) throw restErrors.objectExists(`Activity type '${apiName}'`)
    if (this.#types.size >= MAX_CUSTOM_ACTIVITY_TYPES) throw restErrors.activityTypeLimit()
    const timestamp = toMarketoDateTime(this.#now())
    const stored: StoredCustomActivityType = {
      id: this.#activities.reserveTypeId(),
      apiName,
      createdAt: timestamp,
      updatedAt: timestamp,
      draft: {
        name,
        ...(typeof request.description === 'string' ? { description: request.description } : {}),
        triggerName,
        filterName,
        primaryAttribute,
        attributes: []
      }
    }
    this.#types.set(apiName, stored)
    return describe(stored, true)
  }

  /**
   * `POST /rest/v1/activities/external/type/{apiName}/attributes/create.json` with `{attributes:
   * [{apiName, name, description?, dataType, isPrimary?}]}`: `name` and `dataType` are required
   * (Adobe "Custom Activities", Create Attributes); the attributes go to the draft, which starts as a
   * copy of the approved version. The request is all or nothing (inferred): an `apiName` the draft
   * already has is 1017 "Object already exists" (the documented code for a creation that exists,
   * reference §2.3 — no attribute-specific code is documented), the same one twice in the input 1036,
   * more than 20 secondary attributes 1028. Answers the draft, as Adobe's example does.
   */
  createAttributes (apiName: string, body: unknown): CustomActivityType {
    const stored = this.#types.get(apiName)
    if (stored === undefined) throw restErrors.objectNotFound(`Activity type '${apiName}'`)
    const request = asRecord(body)
    if (request === undefined) throw restErrors.invalidJson()
    if (!Array.isArray(request.attributes) || request.attributes.length === 0) throw restErrors.blank('attributes')
    const added = request.attributes.map((item: unknown, index) => {
      const attribute = asRecord(item)
      if (attribute === undefined) throw restErrors.invalidData(`attributes[${index}] must be an object`)
      // Making a secondary attribute primary (isPrimary: true, after demoting the old one) is not emulated.
      if (attribute.isPrimary === true) throw restErrors.invalidData(`attributes[${index}].isPrimary is not supported by the emulator`)
      return parseAttribute(attribute, `attributes[${index}]`)
    })
    if (new Set(added.map((attribute) => attribute.apiName)).size !== added.length) throw new MarketoRestError('1036', 'Duplicate object found in input')
    const base = stored.draft ?? stored.approved!
    const taken = new Set([base.primaryAttribute.apiName, ...base.attributes.map((attribute) => attribute.apiName)])
    const existing = added.find((attribute) => taken.has(attribute.apiName))
    if (existing !== undefined) throw restErrors.objectExists(`Attribute '${existing.apiName}'`)
    if (base.attributes.length + added.length > MAX_CUSTOM_ACTIVITY_ATTRIBUTES) throw restErrors.fieldLimit()
    const updated: StoredCustomActivityType = {
      ...stored,
      updatedAt: toMarketoDateTime(this.#now()),
      draft: { ...base, attributes: [...base.attributes, ...added] }
    }
    this.#types.set(apiName, updated)
    return describe(updated, true)
  }

  /**
   * `POST /rest/v1/activities/external/type/{apiName}/approve.json` — the draft becomes the approved
   * version and is published (reference §2.7). Types are managed "just like standard Marketo assets"
   * (Adobe "Custom Activities", Approve Type), and approving an asset "that has no draft (that is,
   * has already been approved)" is 709 Business Rule Violation (reference §2.3 [ERR]).
   */
  approve (apiName: string): CustomActivityType {
    const stored = this.#types.get(apiName)
    if (stored === undefined) throw restErrors.objectNotFound(`Activity type '${apiName}'`)
    if (stored.draft === undefined) throw new MarketoRestError('709', `Activity type '${apiName}' has no draft to approve`)
    const approved: StoredCustomActivityType = {
      id: stored.id,
      apiName,
      createdAt: stored.createdAt,
      updatedAt: toMarketoDateTime(this.#now()),
      approved: stored.draft
    }
    this.#types.set(apiName, approved)
    this.#activities.publishType(asActivityTypeDefinition(describe(approved, false)))
    return describe(approved, false)
  }
}

function statusOf (stored: StoredCustomActivityType): CustomActivityTypeStatus {
  if (stored.approved === undefined) return 'draft'
  return stored.draft === undefined ? 'approved' : 'approved with draft'
}

function describe (stored: StoredCustomActivityType, draft: boolean): CustomActivityType {
  const version = draft ? stored.draft ?? stored.approved! : stored.approved ?? stored.draft!
  return { id: stored.id, apiName: stored.apiName, ...version, status: statusOf(stored), createdAt: stored.createdAt, updatedAt: stored.updatedAt }
}

/** Get Custom Activity Types lists a type without its attributes (Adobe "Custom Activities", Get types). */
export function asListing (type: CustomActivityType): CustomActivityTypeListing {
  return {
    id: type.id,
    apiName: type.apiName,
    name: type.name,
    ...(type.description === undefined ? {} : { description: type.description }),
    triggerName: type.triggerName,
    filterName: type.filterName,
    status: type.status,
    createdAt: type.createdAt,
    updatedAt: type.updatedAt
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

function parseAttribute (attribute: Record<string, unknown>, where: string, defaultDataType?: string): CustomActivityAttribute {
  const apiName = requiredText(attribute, 'apiName', where)
  const name = requiredText(attribute, 'name', where)
  const dataType = attribute.dataType ?? defaultDataType
  if (dataType === undefined) throw restErrors.blank(`${where}.dataType`)
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
