import type { ColumnDefinition, EntityDefinition } from './entity-model.ts'
import {
  invalidPayload,
  invalidProperty,
  requiredValueMissing,
  valueTooLong,
  wrongValueType
} from './dataverse-error.ts'
import type { DataverseRecord } from './record-store.ts'

/**
 * Turns a POST/PATCH body into column changes, failing the way Dataverse fails: unknown property →
 * 400 `0x0`, over-long string → 400 `0x80044331`, bad `@odata.bind` → 400 `0x80048d19` (reference
 * doc §6), a configured required column missing → 400 `0x80040203` (see dataverse-error.ts).
 */

export interface PayloadContext {
  readonly definition: EntityDefinition
  /** `create` checks required columns are present; `update` only that they are not being emptied. */
  readonly mode: 'create' | 'update'
  readonly requiredColumns: readonly string[]
  /** Whether a row exists, for `@odata.bind` targets. */
  readonly rowExists: (entitySet: string, id: string) => boolean
  readonly logicalNameOf: (entitySet: string) => string | undefined
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
/** `/systemusers(<id>)`, `systemusers(<id>)` or an absolute URL ending so; braces are tolerated. */
const BIND_REFERENCE = /(?:^|\/)([A-Za-z_]\w*)\(\{?([0-9a-fA-F-]{36})\}?\)$/
const ISO_DATETIME = /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)?$/

export function readRecordPayload (body: unknown, context: PayloadContext): DataverseRecord {
  const { definition } = context
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw invalidPayload(definition.entitySet, 'Microsoft.OData.ODataException: The request body must be a JSON object.')
  }
  const changes: DataverseRecord = {}
  for (const [key, value] of Object.entries(body)) {
    if (key.endsWith('@odata.bind')) {
      Object.assign(changes, readBinding(key.slice(0, -'@odata.bind'.length), value, context))
      continue
    }
    // Instance annotations (`@odata.type`, `@odata.etag`, …) carry no column value.
    if (key.startsWith('@') || key.includes('@')) continue
    const column = definition.columns[key]
    if (column === undefined || (column.readOnly === true && key.startsWith('_'))) {
      throw invalidProperty(key, definition.logicalName)
    }
    // Computed and system columns are not valid for create/update; Dataverse drops them silently.
    if (column.readOnly === true) continue
    changes[key] = readColumnValue(key, column, value, definition)
  }
  checkRequiredColumns(changes, context)
  return changes
}

function readBinding (navigationProperty: string, value: unknown, context: PayloadContext): DataverseRecord {
  const { definition } = context
  const lookup = definition.lookups.find((candidate) => candidate.navigationProperty === navigationProperty)
  if (lookup === undefined) {
    throw invalidPayload(definition.entitySet,
      `Microsoft.OData.ODataException: An undeclared property '${navigationProperty}' which only has property annotations in the payload but no property value was found in the payload. In OData, only declared navigation properties and declared named streams can be represented as properties without values.`)
  }
  if (value === null) return { [lookup.valueColumn]: null }
  const match = typeof value === 'string' ? BIND_REFERENCE.exec(value) : null
  if (match === null) {
    throw invalidPayload(definition.entitySet,
      `Microsoft.OData.ODataException: The value '${String(value)}' of '${navigationProperty}@odata.bind' is not a valid entity reference.`)
  }
  const [, targetSet = '', targetId = ''] = match
  if (targetSet !== lookup.targetEntitySet) {
    throw invalidPayload(definition.entitySet,
      `Microsoft.OData.ODataException: The navigation property '${navigationProperty}' cannot reference the entity set '${targetSet}'.`)
  }
  if (!context.rowExists(targetSet, targetId)) {
    const targetLogicalName = context.logicalNameOf(targetSet) ?? targetSet
    throw invalidPayload(definition.entitySet,
      `Microsoft.Crm.CrmException: ${targetLogicalName} With Id = ${targetId.toLowerCase()} Does Not Exist`)
  }
  return { [lookup.valueColumn]: targetId.toLowerCase() }
}

function readColumnValue (name: string, column: ColumnDefinition, value: unknown, definition: EntityDefinition): unknown {
  if (value === null) return null
  switch (column.type) {
    case 'string': {
      if (typeof value !== 'string') throw wrongValueType(name, 'Edm.String', value)
      if (column.maxLength !== undefined && value.length > column.maxLength) {
        throw valueTooLong(name, definition.logicalName, column.maxLength)
      }
      return value
    }
    case 'integer':
    case 'bigint':
      if (typeof value !== 'number' || !Number.isInteger(value)) throw wrongValueType(name, column.type === 'bigint' ? 'Edm.Int64' : 'Edm.Int32', value)
      return value
    case 'decimal':
      if (typeof value !== 'number' || !Number.isFinite(value)) throw wrongValueType(name, 'Edm.Decimal', value)
      return value
    case 'boolean':
      if (typeof value !== 'boolean') throw wrongValueType(name, 'Edm.Boolean', value)
      return value
    case 'guid':
      if (typeof value !== 'string' || !GUID.test(value)) throw wrongValueType(name, 'Edm.Guid', value)
      return value.toLowerCase()
    case 'datetime': {
      if (typeof value !== 'string' || !ISO_DATETIME.test(value) || Number.isNaN(Date.parse(value))) {
        throw wrongValueType(name, 'Edm.DateTimeOffset', value)
      }
      // Stored as UTC to the second, the way Dataverse returns it.
      return new Date(Date.parse(value.length === 10 ? `${value}T00:00:00Z` : value)).toISOString().replace(/\.\d{3}Z$/, 'Z')
    }
  }
}

function checkRequiredColumns (changes: DataverseRecord, context: PayloadContext): void {
  for (const column of context.requiredColumns) {
    const present = Object.hasOwn(changes, column)
    const value = changes[column]
    const empty = value === null || value === undefined || (typeof value === 'string' && value.trim() === '')
    if ((context.mode === 'create' && (!present || empty)) || (context.mode === 'update' && present && empty)) {
      throw requiredValueMissing(column, context.definition.logicalName)
    }
  }
}
