import {
  SYNC_TABLES, writesToDynamics, writesToMarketo,
  type FieldMapping, type MarketoDataType, type SyncTable
} from './field-mapping.ts'

/**
 * The start-up check of the field mapping against both schemas (issue 12 §4): every problem that
 * would make the sync fail field by field later, named now. Pure: the worker's start-up fetches
 * Marketo's describe and the Dataverse attribute metadata, then calls `checkFieldMapping` (or
 * `assertFieldMappingMatchesSchemas`, which throws) before any poller starts.
 */

/**
 * One Marketo person field as `GET /rest/v1/leads/describe.json` lists it, flattened: `rest.name`,
 * `dataType`, `rest.readOnly`, `length` (marketo-rest-and-ssfs.md §2.5). From Describe2, `name` and
 * `readOnly: !updateable`.
 */
export interface MarketoFieldDescription {
  readonly name: string
  readonly dataType: string
  readonly readOnly: boolean
  readonly length?: number | null
}

/** The `AttributeMetadata` properties the check reads, as the Dataverse Web API names them. */
export interface DataverseAttributeMetadata {
  readonly LogicalName: string
  /** `AttributeTypeCode` name: String, Memo, Integer, BigInt, Boolean, DateTime, Decimal, Double, Money, Picklist, State, Status, Lookup… */
  readonly AttributeType: string
  readonly IsValidForUpdate: boolean
  readonly IsValidForCreate: boolean
  /** String and Memo columns only. */
  readonly MaxLength?: number | null
}

export type DataverseSchema = Readonly<Record<SyncTable, readonly DataverseAttributeMetadata[]>>

export type FieldMappingProblemKind = 'missing-in-marketo' | 'missing-in-dataverse' | 'type-mismatch' | 'read-only-target'

export interface FieldMappingProblem {
  readonly kind: FieldMappingProblemKind
  readonly marketoField: string
  /** Set when the problem is on the Dataverse side. */
  readonly table?: SyncTable
  readonly column?: string
  readonly message: string
}

/** Does not stop start-up: values longer than Dataverse accepts are refused per record, and parked with Dynamics' message (issue 12 §9). */
export interface FieldMappingWarning {
  readonly kind: 'longer-in-marketo'
  readonly marketoField: string
  readonly table: SyncTable
  readonly column: string
  readonly message: string
}

export interface FieldMappingCheck {
  readonly problems: readonly FieldMappingProblem[]
  readonly warnings: readonly FieldMappingWarning[]
}

type TypeFamily = 'text' | 'integer' | 'decimal' | 'boolean' | 'date'

const MARKETO_TYPE_FAMILY: Readonly<Record<MarketoDataType, TypeFamily>> = {
  string: 'text',
  text: 'text',
  email: 'text',
  phone: 'text',
  url: 'text',
  integer: 'integer',
  score: 'integer',
  float: 'decimal',
  currency: 'decimal',
  percent: 'decimal',
  boolean: 'boolean',
  date: 'date',
  datetime: 'date'
}

const DATAVERSE_TYPES: Readonly<Record<TypeFamily, readonly string[]>> = {
  text: ['String', 'Memo'],
  integer: ['Integer', 'BigInt'],
  decimal: ['Decimal', 'Double', 'Money'],
  boolean: ['Boolean'],
  date: ['DateTime']
}

/**
 * Marketo has no option sets: its default mapping carries Person Status, Person Source, Rating
 * and the like as text into `statecode`, `leadsourcecode`, `leadqualitycode` (§11 [S7]), so a
 * Marketo `string` also pairs with Dataverse's option-set types; the option's label is what travels.
 */
const OPTION_SET_TYPES: readonly string[] = ['Picklist', 'State', 'Status']

function familyOf (marketoDataType: string): TypeFamily | undefined {
  return Object.hasOwn(MARKETO_TYPE_FAMILY, marketoDataType) ? MARKETO_TYPE_FAMILY[marketoDataType as MarketoDataType] : undefined
}

/** Whether a Marketo field of `marketoDataType` and a Dataverse column of `attributeType` can carry each other's values. */
export function areCompatibleTypes (marketoDataType: string, attributeType: string): boolean {
  const family = familyOf(marketoDataType)
  if (family === undefined) return false
  return DATAVERSE_TYPES[family].includes(attributeType) || (marketoDataType === 'string' && OPTION_SET_TYPES.includes(attributeType))
}

export function checkFieldMapping (mapping: FieldMapping, marketoFields: readonly MarketoFieldDescription[], dataverse: DataverseSchema): FieldMappingCheck {
  const problems: FieldMappingProblem[] = []
  const warnings: FieldMappingWarning[] = []
  const marketoByName = new Map(marketoFields.map((field) => [field.name, field]))
  const dataverseByTable = Object.fromEntries(SYNC_TABLES.map((table) => [table, new Map(dataverse[table].map((attribute) => [attribute.LogicalName, attribute]))])) as Record<SyncTable, Map<string, DataverseAttributeMetadata>>

  for (const entry of mapping.fields) {
    const name = entry.marketoField
    const described = marketoByName.get(name)
    if (described === undefined) {
      problems.push({ kind: 'missing-in-marketo', marketoField: name, message: `Marketo has no person field "${name}" (not in its describe)` })
    } else {
      if (familyOf(described.dataType) !== MARKETO_TYPE_FAMILY[entry.dataType]) {
        problems.push({ kind: 'type-mismatch', marketoField: name, message: `Marketo field "${name}" is mapped as ${entry.dataType} but Marketo describes it as ${described.dataType}` })
      }
      if (writesToMarketo(entry.direction) && described.readOnly) {
        problems.push({ kind: 'read-only-target', marketoField: name, message: `Marketo field "${name}" is read-only in Marketo's REST API, but direction "${entry.direction}" writes it (use "toDynamics")` })
      }
    }
    // The Marketo side's real type decides what can be written, when Marketo told us one we know.
    const marketoType = described !== undefined && familyOf(described.dataType) !== undefined ? described.dataType : entry.dataType

    for (const table of SYNC_TABLES) {
      const column = entry[table]
      if (column === null) continue
      const attribute = dataverseByTable[table].get(column)
      if (attribute === undefined) {
        problems.push({ kind: 'missing-in-dataverse', marketoField: name, table, column, message: `Dataverse ${table} has no column "${column}" (mapped from Marketo field "${name}")` })
        continue
      }
      if (!areCompatibleTypes(marketoType, attribute.AttributeType)) {
        problems.push({ kind: 'type-mismatch', marketoField: name, table, column, message: `Marketo field "${name}" (${marketoType}) cannot carry Dataverse ${table}.${column} (${attribute.AttributeType})` })
      }
      // The background sync only updates Dynamics records, it never creates them (issue 12 §2:
      // creating is the flow step's), so a column it writes must be valid for update.
      if (writesToDynamics(entry.direction) && !attribute.IsValidForUpdate) {
        problems.push({ kind: 'read-only-target', marketoField: name, table, column, message: `Dataverse ${table}.${column} is not valid for update, but direction "${entry.direction}" writes it from Marketo field "${name}" (use "toMarketo")` })
      }
      const marketoLength = described?.length
      if (writesToDynamics(entry.direction) && typeof marketoLength === 'number' && typeof attribute.MaxLength === 'number' && marketoLength > attribute.MaxLength) {
        warnings.push({ kind: 'longer-in-marketo', marketoField: name, table, column, message: `Marketo field "${name}" holds up to ${marketoLength} characters, Dataverse ${table}.${column} ${attribute.MaxLength}: longer values will be refused by Dynamics` })
      }
    }
  }

  // A Dynamics delete writes this flag to the person (issue 12 §7), so it must be a writable boolean.
  const flagName = mapping.deletedFlag.marketoField
  const flag = marketoByName.get(flagName)
  if (flag === undefined) {
    problems.push({ kind: 'missing-in-marketo', marketoField: flagName, message: `Marketo has no person field "${flagName}" for the "Microsoft is Deleted" flag (not in its describe)` })
  } else {
    if (flag.dataType !== 'boolean') {
      problems.push({ kind: 'type-mismatch', marketoField: flagName, message: `the deleted flag "${flagName}" must be a Marketo boolean, Marketo describes it as ${flag.dataType}` })
    }
    if (flag.readOnly) {
      problems.push({ kind: 'read-only-target', marketoField: flagName, message: `the deleted flag "${flagName}" is read-only in Marketo's REST API; the sync must set it` })
    }
  }

  return { problems, warnings }
}

export class FieldMappingMismatchError extends Error {
  readonly code = 'FIELD_MAPPING_MISMATCH'
  constructor (readonly problems: readonly FieldMappingProblem[]) {
    super(`the field mapping does not match Marketo's or Dataverse's schema:\n  - ${problems.map((problem) => problem.message).join('\n  - ')}`)
    this.name = 'FieldMappingMismatchError'
  }
}

/** For start-up: throws FieldMappingMismatchError naming every problem; returns the warnings to log. */
export function assertFieldMappingMatchesSchemas (mapping: FieldMapping, marketoFields: readonly MarketoFieldDescription[], dataverse: DataverseSchema): readonly FieldMappingWarning[] {
  const { problems, warnings } = checkFieldMapping(mapping, marketoFields, dataverse)
  if (problems.length > 0) throw new FieldMappingMismatchError(problems)
  return warnings
}
