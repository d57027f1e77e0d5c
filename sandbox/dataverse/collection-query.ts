import type { EntityDefinition } from './entity-model.ts'
import { queryError, unknownQueryProperty } from './dataverse-error.ts'
import { FilterSyntaxError, equalityCandidates, evaluateCondition, filterProperties, parseFilter, type FilterExpression } from './odata-filter.ts'
import type { DataverseRecord } from './record-store.ts'

/**
 * `GET /<set>` query options (reference doc §1.10): `$select`, `$filter`, `$orderby`, `$top`,
 * `$count=true`, paging by `Prefer: odata.maxpagesize=N` (default and maximum 5000) with an opaque
 * `$skiptoken`. `$skip` is refused as Dataverse refuses it; `$top` is ignored when a page size is
 * preferred, as Dataverse ignores it.
 */

export const MAX_PAGE_SIZE = 5000

export interface CollectionQuery {
  readonly select: readonly string[] | undefined
  readonly filter: FilterExpression | undefined
  readonly orderBy: ReadonlyArray<{ readonly column: string, readonly descending: boolean }>
  readonly top: number | undefined
  readonly count: boolean
  /** Index of the first row of this page, from `$skiptoken`. */
  readonly offset: number
}

export interface CollectionPage {
  readonly rows: ReadonlyArray<Readonly<DataverseRecord>>
  readonly totalCount: number
  /** Offset of the next page, when there is one. */
  readonly nextOffset: number | undefined
}

export function parseCollectionQuery (params: URLSearchParams, definition: EntityDefinition): CollectionQuery {
  if (params.has('$skip')) throw queryError('The query parameter $skip is not supported.')
  if (params.has('$expand')) throw queryError('The Dataverse emulator does not support $expand.')
  if (params.has('$apply')) throw queryError('The Dataverse emulator does not support $apply.')

  const knownColumn = (name: string): boolean => Object.hasOwn(definition.columns, name)

  let select: string[] | undefined
  const selectParam = params.get('$select')
  if (selectParam !== null && selectParam.trim() !== '') {
    select = selectParam.split(',').map((item) => item.trim()).filter((item) => item !== '')
    for (const column of select) if (!knownColumn(column)) throw unknownQueryProperty(column, definition.logicalName)
  }

  let filter: FilterExpression | undefined
  const filterParam = params.get('$filter')
  if (filterParam !== null && filterParam.trim() !== '') {
    try {
      filter = parseFilter(filterParam)
    } catch (error) {
      if (error instanceof FilterSyntaxError) throw queryError(error.message)
      throw error
    }
    for (const column of filterProperties(filter)) if (!knownColumn(column)) throw unknownQueryProperty(column, definition.logicalName)
  }

  const orderBy: Array<{ column: string, descending: boolean }> = []
  const orderParam = params.get('$orderby')
  if (orderParam !== null && orderParam.trim() !== '') {
    for (const clause of orderParam.split(',')) {
      const [column = '', direction = 'asc', ...extra] = clause.trim().split(/\s+/)
      if (extra.length > 0 || (direction !== 'asc' && direction !== 'desc')) {
        throw queryError(`Syntax error in $orderby clause '${clause.trim()}'.`)
      }
      if (!knownColumn(column)) throw unknownQueryProperty(column, definition.logicalName)
      orderBy.push({ column, descending: direction === 'desc' })
    }
  }

  let top: number | undefined
  const topParam = params.get('$top')
  if (topParam !== null) {
    top = Number(topParam)
    if (!Number.isInteger(top) || top < 0) throw queryError(`Invalid value '${topParam}' for $top query option found. The $top query option requires a non-negative integer value.`)
  }

  const countParam = params.get('$count')
  if (countParam !== null && countParam !== 'true' && countParam !== 'false') {
    throw queryError(`'${countParam}' is not a valid count option.`)
  }

  const skipToken = params.get('$skiptoken')
  const offset = skipToken === null ? 0 : decodeSkipToken(skipToken)

  return { select, filter, orderBy, top, count: countParam === 'true', offset }
}

/** The rows of one page, in query order. `pageSize` comes from `Prefer: odata.maxpagesize`. */
export function runCollectionQuery (rows: ReadonlyArray<Readonly<DataverseRecord>>, query: CollectionQuery, pageSize: number | undefined): CollectionPage {
  const filter = query.filter
  const candidates = filter === undefined ? undefined : equalityCandidates(filter)
  // A string that is not a candidate cannot match; any other value is left to the full evaluation.
  const mayMatch = candidates === undefined
    ? () => true
    : (row: Readonly<DataverseRecord>) => {
        const value = row[candidates.property]
        return typeof value === 'string' ? candidates.values.has(value.toLowerCase()) : value !== null && value !== undefined
      }
  const matching = filter === undefined ? rows : rows.filter((row) => mayMatch(row) && evaluateCondition(filter, row))
  const ordered = query.orderBy.length === 0 ? matching : [...matching].sort((a, b) => compareRows(a, b, query.orderBy))
  const limited = pageSize === undefined && query.top !== undefined ? ordered.slice(0, query.top) : ordered
  const size = Math.min(pageSize ?? MAX_PAGE_SIZE, MAX_PAGE_SIZE)
  const page = limited.slice(query.offset, query.offset + size)
  const nextOffset = query.offset + size < limited.length ? query.offset + size : undefined
  return { rows: page, totalCount: Math.min(limited.length, MAX_PAGE_SIZE), nextOffset }
}

function compareRows (a: Readonly<DataverseRecord>, b: Readonly<DataverseRecord>, orderBy: CollectionQuery['orderBy']): number {
  for (const { column, descending } of orderBy) {
    const result = compareValues(a[column], b[column])
    if (result !== 0) return descending ? -result : result
  }
  return 0
}

/** SQL order: nulls first ascending; strings case-insensitively. */
function compareValues (a: unknown, b: unknown): number {
  const aNull = a === null || a === undefined
  const bNull = b === null || b === undefined
  if (aNull || bNull) return aNull === bNull ? 0 : aNull ? -1 : 1
  if (typeof a === 'string' && typeof b === 'string') {
    const x = a.toLowerCase()
    const y = b.toLowerCase()
    return x < y ? -1 : x > y ? 1 : 0
  }
  const x = a as number
  const y = b as number
  return x < y ? -1 : x > y ? 1 : 0
}

/**
 * Real skip tokens are FetchXML paging cookies; clients must treat them as opaque (§1.10), so any
 * encoding works. This one is base64url JSON, which keeps it URL-safe.
 */
export function encodeSkipToken (offset: number): string {
  return Buffer.from(JSON.stringify({ page: 'emulator', offset })).toString('base64url')
}

function decodeSkipToken (token: string): number {
  try {
    const parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { offset?: unknown }
    if (typeof parsed.offset === 'number' && Number.isInteger(parsed.offset) && parsed.offset >= 0) return parsed.offset
  } catch {
    // fall through to the error below
  }
  throw queryError('The $skiptoken value is not valid.')
}

/** Applies `$select`, keeping the primary key as Dataverse does (§1.3). */
export function projectRow (row: Readonly<DataverseRecord>, select: readonly string[] | undefined, definition: EntityDefinition): DataverseRecord {
  const etag = `W/"${String(row.versionnumber)}"`
  if (select === undefined) return { '@odata.etag': etag, ...row }
  const projected: DataverseRecord = { '@odata.etag': etag }
  for (const column of select) projected[column] = row[column] ?? null
  projected[definition.primaryKey] = row[definition.primaryKey]
  return projected
}
