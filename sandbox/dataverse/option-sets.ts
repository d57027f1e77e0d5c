import type { DataverseRecord } from './record-store.ts'
import type { EntityDefinition } from './entity-model.ts'
import { DataverseError } from './dataverse-error.ts'

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

/**
 * How states and statuses go together: each state's `DefaultStatus` and `InvariantName`
 * (StateOptionMetadata) and each status's `State` (StatusOptionMetadata), as a new organisation
 * has them (dataverse-web-api-and-msal.md §7: lead status 1, 2 in state 0 Open, 3 in 1 Qualified,
 * 4–7 in 2 Disqualified; contact and account 1 Active in 0, 2 Inactive in 1). The lead's default
 * statuses are New, Qualified and Lost (CE `lead.md`'s StateCode options).
 */
interface StateStatusModel {
  readonly states: Readonly<Record<number, { readonly defaultStatus: number, readonly invariantName: string }>>
  readonly stateOfStatus: Readonly<Record<number, number>>
}

const ACTIVE_INACTIVE_PAIRS: StateStatusModel = {
  states: { 0: { defaultStatus: 1, invariantName: 'Active' }, 1: { defaultStatus: 2, invariantName: 'Inactive' } },
  stateOfStatus: { 1: 0, 2: 1 }
}

const STATE_STATUS: Readonly<Record<string, StateStatusModel>> = {
  lead: {
    states: { 0: { defaultStatus: 1, invariantName: 'Open' }, 1: { defaultStatus: 3, invariantName: 'Qualified' }, 2: { defaultStatus: 4, invariantName: 'Disqualified' } },
    stateOfStatus: { 1: 0, 2: 0, 3: 1, 4: 2, 5: 2, 6: 2, 7: 2 }
  },
  contact: ACTIVE_INACTIVE_PAIRS,
  account: ACTIVE_INACTIVE_PAIRS
}

/**
 * Refuses a write whose resulting `statecode`/`statuscode` pair Dataverse would not take: a status
 * that does not belong to the record's state. InvalidStateCodeStatusCode, `0x80048408`, with the
 * platform's message (Microsoft's web-service error codes; KB 923258); 400 as other validation
 * errors. A status written alone into another state is refused this way (a measured Dataverse
 * answer); a state written alone while the record keeps a status of another state is refused too
 * (inferred: "when updating statecode also set statuscode", reference doc §1.5). `row` is the record
 * as it would be after the write; a write naming neither column is not checked.
 */
export function assertStateStatusPair (table: string, changes: Readonly<DataverseRecord>, row: Readonly<DataverseRecord>): void {
  const model = STATE_STATUS[table]
  if (model === undefined || (!Object.hasOwn(changes, 'statecode') && !Object.hasOwn(changes, 'statuscode'))) return
  const state = row.statecode
  const status = row.statuscode
  if (typeof state !== 'number' || typeof status !== 'number') return
  if (model.stateOfStatus[status] !== state) {
    throw new DataverseError(400, '0x80048408', 'State code is invalid or state code is valid but status code is invalid for a specified state code.')
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
      return { Value: Number(value), Label: { LocalizedLabels: [localized], UserLocalizedLabel: localized }, ...pairingOf(table, column, Number(value)) }
    })
  }
}

/** A state option's `DefaultStatus` and `InvariantName`, a status option's `State`; nothing for other columns. */
function pairingOf (table: string, column: string, value: number): Record<string, unknown> {
  const model = STATE_STATUS[table]
  if (model === undefined) return {}
  if (column === 'statecode') {
    const state = model.states[value]
    return state === undefined ? {} : { DefaultStatus: state.defaultStatus, InvariantName: state.invariantName }
  }
  if (column === 'statuscode') {
    const state = model.stateOfStatus[value]
    return state === undefined ? {} : { State: state }
  }
  return {}
}
