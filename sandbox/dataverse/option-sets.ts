import type { DataverseRecord } from './record-store.ts'
import type { EntityDefinition } from './entity-model.ts'

/**
 * The options of the emulated option-set columns, with the labels a new Dataverse organisation has
 * (English, LanguageCode 1033). An option-set column travels as its integer value; its label is
 * served two ways, as Dataverse does (shared/reference/dataverse-web-api-and-msal.md; learn.microsoft.com
 * "Formatted values"): as the `<column>@OData.Community.Display.V1.FormattedValue` annotation of a read
 * sent with `Prefer: odata.include-annotations="OData.Community.Display.V1.FormattedValue"` (or `"*"`),
 * and in the column's metadata, `…/Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata?$expand=OptionSet`.
 */

export const FORMATTED_VALUE = 'OData.Community.Display.V1.FormattedValue'

type Options = Readonly<Record<number, string>>

const ACTIVE_INACTIVE_STATE: Options = { 0: 'Active', 1: 'Inactive' }
const ACTIVE_INACTIVE_STATUS: Options = { 1: 'Active', 2: 'Inactive' }
const PREFERRED_CONTACT_METHOD: Options = { 1: 'Any', 2: 'Email', 3: 'Phone', 4: 'Fax', 5: 'Mail' }
const INDUSTRY: Options = { 1: 'Accounting', 6: 'Business Services', 7: 'Consulting', 12: 'Financial', 19: 'Legal Services', 33: 'Design, Direction and Creative Management' }

const OPTION_SETS: Readonly<Record<string, Readonly<Record<string, Options>>>> = {
  lead: {
    statecode: { 0: 'Open', 1: 'Qualified', 2: 'Disqualified' },
    statuscode: { 1: 'New', 2: 'Contacted', 3: 'Qualified', 4: 'Lost', 5: 'Cannot Contact', 6: 'No Longer Interested', 7: 'Canceled' },
    leadsourcecode: { 1: 'Advertisement', 2: 'Employee Referral', 3: 'External Referral', 4: 'Partner', 5: 'Public Relations', 6: 'Seminar', 7: 'Trade Show', 8: 'Web', 9: 'Word of Mouth', 10: 'Other' },
    leadqualitycode: { 1: 'Hot', 2: 'Warm', 3: 'Cold' },
    preferredcontactmethodcode: PREFERRED_CONTACT_METHOD,
    industrycode: INDUSTRY
  },
  contact: {
    statecode: ACTIVE_INACTIVE_STATE,
    statuscode: ACTIVE_INACTIVE_STATUS,
    preferredcontactmethodcode: PREFERRED_CONTACT_METHOD
  },
  account: {
    statecode: ACTIVE_INACTIVE_STATE,
    statuscode: ACTIVE_INACTIVE_STATUS,
    industrycode: INDUSTRY,
    businesstypecode: { 1: 'Default Value' }
  }
}

/** The options of one column, or undefined for a column that is not an option set. */
export function optionsOf (table: string, column: string): Options | undefined {
  return OPTION_SETS[table]?.[column]
}

/** Whether a Prefer header's `odata.include-annotations` asks for formatted values. */
export function includesFormattedValues (annotations: string | undefined): boolean {
  if (annotations === undefined) return false
  return annotations.replaceAll('"', '').split(/\s+|;/).some((pattern) =>
    pattern === '*' || pattern === FORMATTED_VALUE || pattern === 'OData.Community.Display.V1.*' || pattern === 'OData.Community.*')
}

/** A projected row with the formatted value of each option-set column it carries (a null value has none). */
export function withFormattedValues (row: DataverseRecord, definition: EntityDefinition): DataverseRecord {
  const annotated: DataverseRecord = {}
  for (const [column, value] of Object.entries(row)) {
    annotated[column] = value
    const label = typeof value === 'number' ? optionsOf(definition.logicalName, column)?.[value] : undefined
    if (label !== undefined) annotated[`${column}@${FORMATTED_VALUE}`] = label
  }
  return annotated
}

/** The `OptionSet` of an option-set attribute's metadata, as `$expand=OptionSet` answers it. */
export function optionSetMetadata (table: string, column: string): Record<string, unknown> | null {
  const options = optionsOf(table, column)
  if (options === undefined) return null
  return {
    Name: `${table}_${column}`,
    Options: Object.entries(options).map(([value, label]) => {
      const localized = { Label: label, LanguageCode: 1033 }
      return { Value: Number(value), Label: { LocalizedLabels: [localized], UserLocalizedLabel: localized } }
    })
  }
}
