import type { RecordType } from '../domain/record-type.ts'
import type { PersonFields } from '../domain/person.ts'

/**
 * Marketo person field → Dynamics column, after Marketo's documented default mapping
 * (shared/reference/marketo-native-dynamics-sync.md §11). The service definition declares these
 * as the invocation fields, so Marketo sends them in `objectContext` under `serviceAttribute`;
 * the Marketo REST name is also used when a person must be read from Marketo directly.
 * `contact: null` marks lead-only columns: a contact's company is the `parentcustomerid` account
 * lookup, not text, and contacts have no fax column.
 */
export interface PersonFieldMapping {
  /** Name in the invocation and in Marketo's REST API. */
  readonly marketoField: string
  readonly label: string
  readonly lead: string
  readonly contact: string | null
  readonly dataType: 'string' | 'email'
}

export const PERSON_FIELD_MAPPINGS: readonly PersonFieldMapping[] = [
  { marketoField: 'email', label: 'Email Address', lead: 'emailaddress1', contact: 'emailaddress1', dataType: 'email' },
  { marketoField: 'salutation', label: 'Salutation', lead: 'salutation', contact: 'salutation', dataType: 'string' },
  { marketoField: 'firstName', label: 'First Name', lead: 'firstname', contact: 'firstname', dataType: 'string' },
  { marketoField: 'middleName', label: 'Middle Name', lead: 'middlename', contact: 'middlename', dataType: 'string' },
  { marketoField: 'lastName', label: 'Last Name', lead: 'lastname', contact: 'lastname', dataType: 'string' },
  { marketoField: 'title', label: 'Job Title', lead: 'jobtitle', contact: 'jobtitle', dataType: 'string' },
  { marketoField: 'company', label: 'Company Name', lead: 'companyname', contact: null, dataType: 'string' },
  { marketoField: 'phone', label: 'Phone Number', lead: 'telephone1', contact: 'telephone1', dataType: 'string' },
  { marketoField: 'mobilePhone', label: 'Mobile Phone Number', lead: 'mobilephone', contact: 'mobilephone', dataType: 'string' },
  { marketoField: 'fax', label: 'Fax Number', lead: 'fax', contact: null, dataType: 'string' },
  { marketoField: 'address', label: 'Address', lead: 'address1_line1', contact: 'address1_line1', dataType: 'string' },
  { marketoField: 'city', label: 'City', lead: 'address1_city', contact: 'address1_city', dataType: 'string' },
  { marketoField: 'state', label: 'State', lead: 'address1_stateorprovince', contact: 'address1_stateorprovince', dataType: 'string' },
  { marketoField: 'postalCode', label: 'Postal Code', lead: 'address1_postalcode', contact: 'address1_postalcode', dataType: 'string' },
  { marketoField: 'country', label: 'Country', lead: 'address1_country', contact: 'address1_country', dataType: 'string' }
]

export const MARKETO_PERSON_FIELDS: readonly string[] = PERSON_FIELD_MAPPINGS.map((m) => m.marketoField)


/**
 * The Dynamics record body for a person: mapped, non-empty values only (an empty Marketo field
 * must not blank a Dynamics default), trimmed, the owner bound when one is chosen.
 */
export function toDynamicsRecord (fields: PersonFields, syncAs: RecordType, ownerId: string | undefined): Record<string, string> {
  const record: Record<string, string> = {}
  for (const mapping of PERSON_FIELD_MAPPINGS) {
    const column = syncAs === 'Lead' ? mapping.lead : mapping.contact
    const value = fields[mapping.marketoField]
    if (column === null || value === null || value === undefined) continue
    const text = String(value).trim()
    if (text !== '') record[column] = text
  }
  if (ownerId !== undefined) record['ownerid@odata.bind'] = `/systemusers(${ownerId})`
  return record
}

/** Emails compare case-insensitively in Dataverse filters and in Marketo; one canonical form. */
export function normaliseEmail (value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined
  const email = value.trim().toLowerCase()
  return email.includes('@') ? email : undefined
}
