import { createHash } from 'node:crypto'
import { DataverseError, queryError, unknownQueryProperty } from './dataverse-error.ts'
import { optionSetMetadata } from './option-sets.ts'
import { ENTITY_DEFINITIONS, type ColumnDefinition, type EntityDefinition } from './entity-model.ts'

/**
 * Column definitions as Dataverse's metadata Web API serves them (learn.microsoft.com, "Query table
 * definitions using the Web API"): `GET EntityDefinitions(LogicalName='lead')/Attributes?$select=…`
 * lists every `AttributeMetadata`, and a cast segment such as
 * `/Microsoft.Dynamics.CRM.StringAttributeMetadata` keeps one derived type and makes its own
 * properties (`MaxLength`) selectable; the base type has no `MaxLength`, and selecting it there is
 * refused the way any unknown property is. `MetadataId` is always returned. Built from the emulator's
 * entity model, so what the metadata says is what its writes enforce.
 */

export interface AttributeMetadataRow {
  readonly '@odata.type': string
  readonly MetadataId: string
  readonly LogicalName: string
  readonly SchemaName: string
  readonly AttributeType: string
  readonly IsValidForCreate: boolean
  readonly IsValidForUpdate: boolean
  readonly IsValidForRead: boolean
  readonly MaxLength?: number
}

const BASE_PROPERTIES = ['MetadataId', 'LogicalName', 'SchemaName', 'AttributeType', 'IsValidForCreate', 'IsValidForUpdate', 'IsValidForRead'] as const

/** `AttributeTypeCode` name → the derived metadata type that carries it. */
const METADATA_TYPE: Readonly<Record<string, string>> = {
  String: 'StringAttributeMetadata',
  Memo: 'MemoAttributeMetadata',
  Integer: 'IntegerAttributeMetadata',
  BigInt: 'BigIntAttributeMetadata',
  Decimal: 'DecimalAttributeMetadata',
  Money: 'MoneyAttributeMetadata',
  Boolean: 'BooleanAttributeMetadata',
  DateTime: 'DateTimeAttributeMetadata',
  Picklist: 'PicklistAttributeMetadata',
  State: 'StateAttributeMetadata',
  Status: 'StatusAttributeMetadata',
  Lookup: 'LookupAttributeMetadata',
  Owner: 'LookupAttributeMetadata',
  Customer: 'LookupAttributeMetadata',
  Uniqueidentifier: 'UniqueIdentifierAttributeMetadata'
}

/** Derived types with an `OptionSet` to expand. */
const OPTION_SET_METADATA_TYPES = new Set(['PicklistAttributeMetadata', 'StateAttributeMetadata', 'StatusAttributeMetadata'])

/** Derived types with a `MaxLength` of their own. */
const WITH_MAX_LENGTH = new Set(['StringAttributeMetadata', 'MemoAttributeMetadata'])

const WIRE_TYPE: Readonly<Record<ColumnDefinition['type'], string>> = {
  string: 'String',
  integer: 'Integer',
  bigint: 'BigInt',
  decimal: 'Decimal',
  boolean: 'Boolean',
  datetime: 'DateTime',
  guid: 'Uniqueidentifier'
}

/** `_ownerid_value` is how the Web API reads the lookup column `ownerid` back. */
const LOOKUP_VALUE_COLUMN = /^_(\w+)_value$/

function lookupTypeOf (logicalName: string): string {
  if (logicalName === 'ownerid') return 'Owner'
  if (logicalName === 'customerid' || logicalName === 'parentcustomerid') return 'Customer'
  return 'Lookup'
}

/** A stable id per table and column, shaped as Dataverse's GUIDs are. */
function metadataIdOf (table: string, column: string): string {
  const hex = createHash('sha256').update(`${table}.${column}`).digest('hex')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`
}

export function attributeMetadataOf (definition: EntityDefinition): AttributeMetadataRow[] {
  const writableLookups = new Set(definition.lookups.map((lookup) => lookup.valueColumn))
  return Object.entries(definition.columns).map(([column, columnDefinition]) => {
    const lookup = LOOKUP_VALUE_COLUMN.exec(column)?.[1]
    const logicalName = lookup ?? column
    const attributeType = lookup !== undefined ? lookupTypeOf(lookup) : columnDefinition.attributeType ?? WIRE_TYPE[columnDefinition.type]
    const isPrimaryKey = column === definition.primaryKey
    // A lookup is written through its navigation property (`ownerid@odata.bind`), so it is valid for
    // create and update although its `_x_value` read-back column is not writable itself.
    const writable = writableLookups.has(column) || columnDefinition.readOnly !== true
    return {
      '@odata.type': `#Microsoft.Dynamics.CRM.${METADATA_TYPE[attributeType] ?? 'AttributeMetadata'}`,
      MetadataId: metadataIdOf(definition.logicalName, logicalName),
      LogicalName: logicalName,
      SchemaName: logicalName,
      AttributeType: attributeType,
      IsValidForCreate: writable,
      // A row's primary key is chosen once, at create.
      IsValidForUpdate: writable && !isPrimaryKey,
      IsValidForRead: true,
      ...(columnDefinition.maxLength === undefined ? {} : { MaxLength: columnDefinition.maxLength })
    }
  })
}

const ATTRIBUTES_PATH = /^EntityDefinitions\(LogicalName='([^']*)'\)\/Attributes(?:\/Microsoft\.Dynamics\.CRM\.(\w+))?$/

/** Whether `resource` (the path after `/api/data/v9.2/`) is an attribute metadata query. */
export function isAttributeMetadataPath (resource: string): boolean {
  return ATTRIBUTES_PATH.test(resource)
}

/** The body of a GET on an attribute metadata path; `base` is the Web API root the client used. */
export function answerAttributeMetadata (resource: string, params: URLSearchParams, base: string): Record<string, unknown> {
  const [, tableName = '', cast] = ATTRIBUTES_PATH.exec(resource) ?? []
  const definition = ENTITY_DEFINITIONS.find((entity) => entity.logicalName === tableName)
  // (inferred) the answer of an org without that table; Dataverse's exact wording is not in the references.
  if (definition === undefined) throw new DataverseError(404, '0x80040217', `Could not find entity with name '${tableName}'.`)
  const castTypes = new Set(Object.values(METADATA_TYPE))
  if (cast !== undefined && !castTypes.has(cast)) throw queryError(`Type 'Microsoft.Dynamics.CRM.${cast}' is not a type derived from 'Microsoft.Dynamics.CRM.AttributeMetadata'.`)
  const selectable = new Set<string>([...BASE_PROPERTIES, ...(cast !== undefined && WITH_MAX_LENGTH.has(cast) ? ['MaxLength'] : [])])
  const select = (params.get('$select') ?? '').split(',').map((name) => name.trim()).filter((name) => name !== '')
  for (const name of select) {
    if (!selectable.has(name)) throw unknownQueryProperty(name, cast ?? 'AttributeMetadata')
  }
  // `OptionSet` is a navigation property of the option-set types only (EnumAttributeMetadata), so
  // expanding it is refused elsewhere, as any unknown property is.
  const expand = (params.get('$expand') ?? '').split(',').map((name) => name.trim()).filter((name) => name !== '')
  for (const name of expand) {
    if (name !== 'OptionSet' || cast === undefined || !OPTION_SET_METADATA_TYPES.has(cast)) throw unknownQueryProperty(name, cast ?? 'AttributeMetadata')
  }
  const rows = attributeMetadataOf(definition).filter((row) => cast === undefined || row['@odata.type'] === `#Microsoft.Dynamics.CRM.${cast}`)
  const selected = select.length === 0 ? rows : rows.map((row) => Object.fromEntries(Object.entries(row).filter(([name]) => name === '@odata.type' || name === 'MetadataId' || select.includes(name))))
  const shown = expand.length === 0 ? selected : selected.map((row, index) => ({ ...row, OptionSet: optionSetMetadata(definition.logicalName, rows[index]!.LogicalName) }))
  const castSegment = cast === undefined ? '' : `/Microsoft.Dynamics.CRM.${cast}`
  return {
    '@odata.context': `${base}$metadata#EntityDefinitions('${definition.logicalName}')/Attributes${castSegment}${select.length === 0 ? '' : `(${select.join(',')})`}`,
    value: shown
  }
}
