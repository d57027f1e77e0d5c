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
  { name: 'createdAt', displayName: 'Created At', dataType: 'datetime', readOnly: true },
  { name: 'updatedAt', displayName: 'Updated At', dataType: 'datetime', readOnly: true }
]

/** Custom fields get ids above the standard range, as Marketo's custom fields do. */
const FIRST_CUSTOM_FIELD_ID = 10001

export class LeadFieldCatalog {
  readonly #fields = new Map<string, LeadFieldDefinition>()
  #nextCustomId = FIRST_CUSTOM_FIELD_ID

  constructor () {
    STANDARD_FIELDS.forEach((field, index) => this.#fields.set(field.name, { id: index + 1, ...field }))
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
