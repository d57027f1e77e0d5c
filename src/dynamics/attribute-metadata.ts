import type { DataverseClient } from './dataverse-client.ts'
import { SYNC_TABLES, type SyncTable } from '../sync/field-mapping.ts'
import type { DataverseAttributeMetadata, DataverseSchema } from '../sync/field-mapping-check.ts'
import type { OptionSetOption, OptionSets } from '../sync/option-labels.ts'
import { hasSyncFilterColumn } from '../sync/sync-filter.ts'
import { STATE_COLUMN, STATUS_COLUMN, type StateStatusOptions } from '../sync/state-status.ts'

/**
 * The columns of the lead and contact tables as Dataverse's metadata describes them, for the
 * start-up check of the field mapping. Queried with the Web API's metadata queries
 * (learn.microsoft.com, "Query table definitions using the Web API"):
 * `EntityDefinitions(LogicalName='lead')/Attributes?$select=…` for every column, then
 * `…/Attributes/Microsoft.Dynamics.CRM.StringAttributeMetadata` and `…MemoAttributeMetadata` for
 * the lengths: `MaxLength` belongs to those derived types only, and selecting it on the base
 * `AttributeMetadata` is refused. Three requests per table, once at start-up.
 */

const BASE_SELECT = ['LogicalName', 'AttributeType', 'IsValidForUpdate', 'IsValidForCreate'] as const
const TEXT_METADATA_TYPES = ['StringAttributeMetadata', 'MemoAttributeMetadata'] as const

function attributesPath (table: SyncTable, cast?: string): string {
  return `EntityDefinitions(LogicalName='${table}')/Attributes${cast === undefined ? '' : `/Microsoft.Dynamics.CRM.${cast}`}`
}

export async function readTableAttributes (client: DataverseClient, table: SyncTable): Promise<DataverseAttributeMetadata[]> {
  const [attributes, ...textAttributes] = await Promise.all([
    client.retrieveMultiple<DataverseAttributeMetadata>(attributesPath(table), { select: BASE_SELECT }),
    ...TEXT_METADATA_TYPES.map(async (cast) => await client.retrieveMultiple<{ LogicalName: string, MaxLength?: number | null }>(attributesPath(table, cast), { select: ['LogicalName', 'MaxLength'] }))
  ])
  const maxLengths = new Map(textAttributes.flat().map((attribute) => [attribute.LogicalName, attribute.MaxLength ?? null]))
  return (attributes ?? []).map((attribute) => ({
    LogicalName: attribute.LogicalName,
    AttributeType: attribute.AttributeType,
    IsValidForUpdate: attribute.IsValidForUpdate,
    IsValidForCreate: attribute.IsValidForCreate,
    ...(maxLengths.has(attribute.LogicalName) ? { MaxLength: maxLengths.get(attribute.LogicalName) ?? null } : {})
  }))
}

const OPTION_SET_METADATA_TYPES = ['PicklistAttributeMetadata', 'StateAttributeMetadata', 'StatusAttributeMetadata'] as const

interface OptionSetAttribute {
  readonly LogicalName: string
  readonly OptionSet?: { readonly Options?: ReadonlyArray<{ readonly Value: number, readonly Label?: { readonly UserLocalizedLabel?: { readonly Label?: string } | null } }> } | null
}

/**
 * The options of a table's option-set columns with their labels in the user's language, read once at
 * start-up so Marketo's labels can be written back as option values: `OptionSet` is a navigation
 * property of the Picklist, State and Status metadata types, read with `$expand=OptionSet`
 * (learn.microsoft.com, "Query table definitions using the Web API"). Three requests per table.
 */
export async function readTableOptionSets (client: Pick<DataverseClient, 'retrieveMultiple'>, table: SyncTable): Promise<OptionSets> {
  const answers = await Promise.all(OPTION_SET_METADATA_TYPES.map(async (cast) =>
    // The query travels in the path: retrieveMultiple's options have no $expand.
    await client.retrieveMultiple<OptionSetAttribute>(`${attributesPath(table, cast)}?$select=LogicalName&$expand=OptionSet`)))
  const optionSets: Record<string, OptionSetOption[]> = {}
  for (const attribute of answers.flat()) {
    optionSets[attribute.LogicalName] = (attribute.OptionSet?.Options ?? []).flatMap((option) => {
      const label = option.Label?.UserLocalizedLabel?.Label
      return typeof label === 'string' ? [{ value: option.Value, label }] : []
    })
  }
  return optionSets
}

/** Lead and contact, read at the same time. */
export async function readPersonTableSchemas (client: DataverseClient): Promise<DataverseSchema> {
  const [lead, contact] = await Promise.all(SYNC_TABLES.map(async (table) => await readTableAttributes(client, table)))
  return { lead: lead ?? [], contact: contact ?? [] }
}

/**
 * The tables that have the sync filter column `new_synctomkto` (marketo-native-dynamics-sync.md §5):
 * a custom Two Options column an org may or may not have created, so whether a change read may
 * select it is learnt once at start-up. Asked of the Boolean attributes only, one request per
 * table: the filter is a Two Options column, and a column of that name of another type is not it.
 */
export async function readSyncFilterTables (client: Pick<DataverseClient, 'retrieveMultiple'>): Promise<SyncTable[]> {
  const answers = await Promise.all(SYNC_TABLES.map(async (table) =>
    await client.retrieveMultiple<{ LogicalName: string }>(attributesPath(table, 'BooleanAttributeMetadata'), { select: ['LogicalName'] })))
  return SYNC_TABLES.filter((_table, index) => hasSyncFilterColumn(answers[index] ?? []))
}

interface StateOptionAttribute {
  readonly LogicalName: string
  readonly OptionSet?: { readonly Options?: ReadonlyArray<{ readonly Value: number, readonly DefaultStatus?: number | null }> } | null
}

interface StatusOptionAttribute {
  readonly LogicalName: string
  readonly OptionSet?: { readonly Options?: ReadonlyArray<{ readonly Value: number, readonly State?: number | null }> } | null
}

/**
 * How a table's states and statuses go together, read once at start-up with the option sets so a
 * Marketo Status or Status Reason is written as a pair Dataverse accepts (state-status.ts): each
 * option of `StateAttributeMetadata`'s `OptionSet` carries its `DefaultStatus`, each option of
 * `StatusAttributeMetadata`'s its `State` (learn.microsoft.com, "StateOptionMetadata ComplexType",
 * "StatusOptionMetadata ComplexType"). Two requests per table; undefined for a table without a state.
 */
export async function readTableStateStatus (client: Pick<DataverseClient, 'retrieveMultiple'>, table: SyncTable): Promise<StateStatusOptions | undefined> {
  const [states, statuses] = await Promise.all([
    client.retrieveMultiple<StateOptionAttribute>(`${attributesPath(table, 'StateAttributeMetadata')}?$select=LogicalName&$expand=OptionSet`),
    client.retrieveMultiple<StatusOptionAttribute>(`${attributesPath(table, 'StatusAttributeMetadata')}?$select=LogicalName&$expand=OptionSet`)
  ])
  const stateOptions = (states ?? []).find((attribute) => attribute.LogicalName === STATE_COLUMN)?.OptionSet?.Options
  const statusOptions = (statuses ?? []).find((attribute) => attribute.LogicalName === STATUS_COLUMN)?.OptionSet?.Options
  if (stateOptions === undefined || statusOptions === undefined) return undefined
  return {
    states: stateOptions.flatMap((option) => typeof option.DefaultStatus === 'number' ? [{ value: option.Value, defaultStatus: option.DefaultStatus }] : []),
    statuses: statusOptions.flatMap((option) => typeof option.State === 'number' ? [{ value: option.Value, state: option.State }] : [])
  }
}
