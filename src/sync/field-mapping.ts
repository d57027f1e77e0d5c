import { Type, type Static } from 'typebox'
import { Value } from 'typebox/value'

/**
 * Which person fields the background sync carries, and to which Dataverse columns: a JSON file
 * (src/sync/field-mapping.default.json holds Marketo's documented default mapping,
 * marketo-native-dynamics-sync.md §11 [S7]; SYNC_FIELD_MAPPING_FILE may name another). This module
 * turns the file's text into a typed, validated mapping; it reads no file and no schema itself.
 */

/** Marketo `describe` data types the sync knows how to carry (marketo-rest-and-ssfs.md §2.5). */
export const MARKETO_DATA_TYPES = ['string', 'text', 'email', 'phone', 'url', 'integer', 'score', 'float', 'currency', 'percent', 'boolean', 'date', 'datetime'] as const
export type MarketoDataType = typeof MARKETO_DATA_TYPES[number]

/**
 * Leads and contacts sync both ways (§2 [S1][S2]); a field one side computes or locks flows one
 * way only: `toMarketo` (e.g. Dataverse's own `createdon`), `toDynamics` (e.g. Marketo Sales
 * Insight scores, read-only in Marketo's REST API [S42]).
 */
export const SYNC_DIRECTIONS = ['both', 'toMarketo', 'toDynamics'] as const
export type SyncDirection = typeof SYNC_DIRECTIONS[number]

export const SYNC_TABLES = ['lead', 'contact'] as const
export type SyncTable = typeof SYNC_TABLES[number]

const MarketoFieldName = Type.String({ pattern: '^[A-Za-z][A-Za-z0-9_]*$', description: 'Marketo REST API name, e.g. firstName' })
/** Dataverse logical names are lower case (dataverse-web-api-and-msal.md §7). */
const DataverseColumn = Type.Union([Type.String({ pattern: '^[a-z][a-z0-9_]*$' }), Type.Null()], { description: 'Dataverse logical name, or null: the table has no column for this field' })

export const FieldMappingEntrySchema = Type.Object({
  marketoField: MarketoFieldName,
  /** The name Marketo's UI and the mapping documentation use, for the humans matching the two. */
  marketoLabel: Type.Optional(Type.String()),
  dataType: Type.Enum(MARKETO_DATA_TYPES),
  lead: DataverseColumn,
  contact: DataverseColumn,
  direction: Type.Enum(SYNC_DIRECTIONS),
  note: Type.Optional(Type.String())
}, { additionalProperties: false })
export type FieldMappingEntry = Static<typeof FieldMappingEntrySchema>

export const FieldMappingSchema = Type.Object({
  $comment: Type.Optional(Type.String()),
  /** The Marketo boolean a Dynamics delete sets; the person itself is never deleted (§7 [S21]). */
  deletedFlag: Type.Object({
    marketoField: MarketoFieldName,
    marketoLabel: Type.Optional(Type.String()),
    note: Type.Optional(Type.String())
  }, { additionalProperties: false }),
  fields: Type.Array(FieldMappingEntrySchema, { minItems: 1 })
}, { additionalProperties: false })
export type FieldMapping = Static<typeof FieldMappingSchema>

export class FieldMappingError extends Error {
  readonly code = 'FIELD_MAPPING_INVALID'
  constructor (readonly source: string, readonly problems: readonly string[]) {
    super(`field mapping ${source} is invalid:\n  - ${problems.join('\n  - ')}`)
    this.name = 'FieldMappingError'
  }
}

export function writesToDynamics (direction: SyncDirection): boolean {
  return direction !== 'toMarketo'
}

export function writesToMarketo (direction: SyncDirection): boolean {
  return direction !== 'toDynamics'
}

/** `source` names the file in error messages. Throws FieldMappingError listing every problem at once. */
export function parseFieldMapping (text: string, source: string): FieldMapping {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (error) {
    throw new FieldMappingError(source, [`not JSON: ${(error as Error).message}`])
  }
  const schemaProblems = describeSchemaErrors(value)
  if (schemaProblems.length > 0) throw new FieldMappingError(source, schemaProblems)
  const mapping = value as FieldMapping
  const problems = consistencyProblems(mapping)
  if (problems.length > 0) throw new FieldMappingError(source, problems)
  return mapping
}

/** One line per wrong value, naming the entry by its Marketo field when it has one. */
function describeSchemaErrors (value: unknown): string[] {
  const lines: string[] = []
  for (const error of Value.Errors(FieldMappingSchema, value)) {
    // A union's per-branch failures and `false` sub-schemas repeat what the anyOf and
    // additionalProperties errors say in one line; keep those.
    if (error.keyword === 'boolean' || error.schemaPath.includes('/anyOf/')) continue
    const property = error.instancePath.split('/').at(-1) ?? ''
    let message = error.message
    if (error.keyword === 'enum') message = `must be one of ${((error.params as { allowedValues?: string[] }).allowedValues ?? []).join(', ')}`
    if (error.keyword === 'anyOf' && (property === 'lead' || property === 'contact')) message = 'must be a lower-case Dataverse logical name or null'
    if (error.keyword === 'additionalProperties') message = `has unknown properties ${JSON.stringify((error.params as { additionalProperties?: string[] }).additionalProperties ?? [])}`
    const line = `${locate(value, error.instancePath)}: ${message}`
    if (!lines.includes(line)) lines.push(line)
  }
  if (lines.length === 0 && !Value.Check(FieldMappingSchema, value)) lines.push('the file does not match the field mapping schema')
  return lines
}

/** `/fields/3/direction` → `fields[3] (marketoField "title").direction`. */
function locate (root: unknown, instancePath: string): string {
  const parts = instancePath.split('/').slice(1)
  if (parts.length === 0) return 'the file'
  if (parts[0] === 'fields' && parts[1] !== undefined) {
    const entry = (root as { fields?: unknown[] }).fields?.[Number(parts[1])] as { marketoField?: unknown } | undefined
    const name = typeof entry?.marketoField === 'string' ? ` (marketoField "${entry.marketoField}")` : ''
    return `fields[${parts[1]}]${name}${parts.slice(2).map((part) => `.${part}`).join('')}`
  }
  return parts.join('.')
}

/** What the schema cannot say: names unique, every entry reaching a table, one source per column. */
function consistencyProblems (mapping: FieldMapping): string[] {
  const problems: string[] = []
  const seen = new Set<string>()
  for (const entry of mapping.fields) {
    if (seen.has(entry.marketoField)) problems.push(`Marketo field "${entry.marketoField}" is mapped more than once`)
    seen.add(entry.marketoField)
    if (entry.lead === null && entry.contact === null) problems.push(`Marketo field "${entry.marketoField}" maps to no lead or contact column`)
  }
  if (seen.has(mapping.deletedFlag.marketoField)) {
    problems.push(`Marketo field "${mapping.deletedFlag.marketoField}" is the deleted flag and may not also be a mapped field`)
  }
  // Two Marketo fields on one column would make the column's value depend on which was read last,
  // and a Dynamics edit could not say which field it belongs to.
  for (const table of SYNC_TABLES) {
    const owners = new Map<string, string>()
    for (const entry of mapping.fields) {
      const column = entry[table]
      if (column === null) continue
      const owner = owners.get(column)
      if (owner !== undefined) problems.push(`${table} column "${column}" is mapped from both "${owner}" and "${entry.marketoField}"`)
      else owners.set(column, entry.marketoField)
    }
  }
  return problems
}
