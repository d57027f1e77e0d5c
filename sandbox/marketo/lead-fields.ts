/**
 * The person (lead) fields the emulated instance knows, by REST API name. Marketo rejects unknown
 * field names (1006 "Field '%s' not found", reference §2.3), so the catalog decides what Get Leads
 * and Sync Leads accept and what Describe lists. It grows when the emulator is seeded with a new
 * field or an installed SSFS service declares an incoming field (its "custom field").
 */

export interface LeadFieldDefinition {
  readonly id: number
  /** REST API name, e.g. `firstName`. */
  readonly name: string
  readonly displayName: string
  readonly dataType: string
  readonly length?: number
  readonly readOnly: boolean
}

const STANDARD_FIELDS: ReadonlyArray<Omit<LeadFieldDefinition, 'id'>> = [
  { name: 'id', displayName: 'Id', dataType: 'integer', readOnly: true },
  { name: 'email', displayName: 'Email Address', dataType: 'email', length: 255, readOnly: false },
  { name: 'salutation', displayName: 'Salutation', dataType: 'string', length: 255, readOnly: false },
  { name: 'firstName', displayName: 'First Name', dataType: 'string', length: 255, readOnly: false },
  { name: 'middleName', displayName: 'Middle Name', dataType: 'string', length: 255, readOnly: false },
  { name: 'lastName', displayName: 'Last Name', dataType: 'string', length: 255, readOnly: false },
  { name: 'title', displayName: 'Job Title', dataType: 'string', length: 255, readOnly: false },
  { name: 'company', displayName: 'Company Name', dataType: 'string', length: 255, readOnly: false },
  { name: 'phone', displayName: 'Phone Number', dataType: 'phone', length: 255, readOnly: false },
  { name: 'mobilePhone', displayName: 'Mobile Phone Number', dataType: 'phone', length: 255, readOnly: false },
  { name: 'fax', displayName: 'Fax Number', dataType: 'phone', length: 255, readOnly: false },
  { name: 'address', displayName: 'Address', dataType: 'text', readOnly: false },
  { name: 'city', displayName: 'City', dataType: 'string', length: 255, readOnly: false },
  { name: 'state', displayName: 'State', dataType: 'string', length: 255, readOnly: false },
  { name: 'country', displayName: 'Country', dataType: 'string', length: 255, readOnly: false },
  { name: 'postalCode', displayName: 'Postal Code', dataType: 'string', length: 255, readOnly: false },
  { name: 'website', displayName: 'Website', dataType: 'url', length: 255, readOnly: false },
  { name: 'industry', displayName: 'Industry', dataType: 'string', length: 255, readOnly: false },
  { name: 'leadSource', displayName: 'Person Source', dataType: 'string', length: 255, readOnly: false },
  { name: 'leadStatus', displayName: 'Person Status', dataType: 'string', length: 255, readOnly: false },
  { name: 'unsubscribed', displayName: 'Unsubscribed', dataType: 'boolean', readOnly: false },
  { name: 'doNotCall', displayName: 'Do Not Call', dataType: 'boolean', readOnly: false },
  { name: 'leadNotes', displayName: 'Person Notes', dataType: 'text', readOnly: false },
  { name: 'rating', displayName: 'Person Rating', dataType: 'string', length: 255, readOnly: false },
  { name: 'annualRevenue', displayName: 'Annual Revenue', dataType: 'currency', readOnly: false },
  { name: 'leadScore', displayName: 'Person Score', dataType: 'integer', readOnly: false },
  // Marketo Sales Insight fields: Marketo calculates them and its REST API cannot write them
  // (marketo-native-dynamics-sync.md [S42]); the sync only carries them to Dynamics.
  { name: 'relativeScoring', displayName: 'Relative Score', dataType: 'integer', readOnly: true },
  { name: 'priority', displayName: 'Priority', dataType: 'integer', readOnly: true },
  { name: 'relativeUrgency', displayName: 'Relative Urgency', dataType: 'integer', readOnly: true },
  { name: 'msiLastInterestingMomentDate', displayName: 'Last Interesting Moment Date', dataType: 'datetime', readOnly: true },
  { name: 'msiLastInterestingMomentDesc', displayName: 'Last Interesting Moment Desc', dataType: 'string', length: 255, readOnly: true },
  { name: 'msiLastInterestingMomentSource', displayName: 'Last Interesting Moment Source', dataType: 'string', length: 255, readOnly: true },
  { name: 'msiLastInterestingMomentType', displayName: 'Last Interesting Moment Type', dataType: 'string', length: 255, readOnly: true },
  { name: 'createdAt', displayName: 'Created At', dataType: 'datetime', readOnly: true },
  { name: 'updatedAt', displayName: 'Updated At', dataType: 'datetime', readOnly: true }
]

/**
 * The custom fields Marketo's native Dynamics sync creates in an instance it syncs (the "Microsoft …"
 * fields of its default mapping, marketo-native-dynamics-sync.md §11 [S7]; "Microsoft Is Deleted"
 * §7, §10). Their REST names are not documented: these are the names src/sync/field-mapping.default.json
 * expects, so the default mapping checks out against the sandbox as it would against an instance
 * whose admin created them.
 */
const NATIVE_SYNC_CUSTOM_FIELDS: ReadonlyArray<Omit<LeadFieldDefinition, 'id'>> = [
  { name: 'microsoftCreatedDate', displayName: 'Microsoft Created Date', dataType: 'datetime', readOnly: false },
  { name: 'microsoftStatusReason', displayName: 'Status Reason', dataType: 'string', length: 255, readOnly: false },
  { name: 'microsoftAddress2', displayName: 'Microsoft Address 2', dataType: 'string', length: 255, readOnly: false },
  { name: 'microsoftAddress3', displayName: 'Microsoft Address 3', dataType: 'string', length: 255, readOnly: false },
  { name: 'microsoftDoNotEmail', displayName: 'Microsoft Do Not Email', dataType: 'boolean', readOnly: false },
  { name: 'microsoftDoNotFax', displayName: 'Microsoft Do Not Fax', dataType: 'boolean', readOnly: false },
  { name: 'microsoftDoNotSendMarketingMaterial', displayName: 'Microsoft Do Not Send Marketing Material', dataType: 'boolean', readOnly: false },
  { name: 'microsoftHomePhone', displayName: 'Microsoft Home Phone', dataType: 'phone', length: 255, readOnly: false },
  { name: 'microsoftPreferredMethodOfContact', displayName: 'Microsoft Preferred Method Of Contact', dataType: 'string', length: 255, readOnly: false },
  { name: 'microsoftTopic', displayName: 'Microsoft Topic', dataType: 'string', length: 255, readOnly: false },
  { name: 'microsoftIsDeleted', displayName: 'Microsoft Is Deleted', dataType: 'boolean', readOnly: false }
]

/** Custom fields get ids above the standard range, as Marketo's custom fields do. */
const FIRST_CUSTOM_FIELD_ID = 10001

export class LeadFieldCatalog {
  readonly #fields = new Map<string, LeadFieldDefinition>()
  #nextCustomId = FIRST_CUSTOM_FIELD_ID

  constructor () {
    STANDARD_FIELDS.forEach((field, index) => this.#fields.set(field.name, { id: index + 1, ...field }))
    for (const field of NATIVE_SYNC_CUSTOM_FIELDS) this.#fields.set(field.name, { id: this.#nextCustomId++, ...field })
  }

  has (name: string): boolean {
    return this.#fields.has(name)
  }

  get (name: string): LeadFieldDefinition | undefined {
    return this.#fields.get(name)
  }

  list (): LeadFieldDefinition[] {
    return [...this.#fields.values()]
  }

  /** Adds a custom field unless one with that REST name exists; returns the (existing) definition. */
  ensure (name: string, dataType = 'string', displayName = name): LeadFieldDefinition {
    const existing = this.#fields.get(name)
    if (existing !== undefined) return existing
    const field: LeadFieldDefinition = { id: this.#nextCustomId++, name, displayName, dataType, readOnly: false }
    this.#fields.set(name, field)
    return field
  }
}
