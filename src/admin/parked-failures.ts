import type { Logger } from 'pino'
import { retryDynamicsParkedChange, retryDynamicsParkedChanges, type DynamicsParkedChangeRetryResult } from '../background-sync/dynamics-parked-change-retry.ts'
import { retryParkedChange, retryParkedChanges, type ParkedChangeRetryResult } from '../background-sync/parked-change-retry.ts'
import type { ParkedChangeRetryDepsOfBothDirections } from '../background-sync/parked-change-retry-deps.ts'
import { ParkedChangeError, type ParkedChange, type ParkedChangeStore, type ParkedChangeFilter, type ParkedDirection } from '../background-sync/parked-changes.ts'
import { AdminBadRequestError, AdminNotFoundError } from '../errors.ts'
import type { SyncTable } from '../sync/field-mapping.ts'

/**
 * The admin API's parked failures (issue 13 §4): list, read, retry and discard the changes a side
 * refused, over the store and retry of src/background-sync/. Routes (routes/admin-parked.ts) parse
 * and call one of these.
 */

/** The filter as an operator writes it: `olderThan` an age such as `30m`, `6h`, `2d`. */
export interface ParkedFailureQuery {
  readonly code?: string
  readonly direction?: ParkedDirection
  readonly table?: SyncTable
  readonly olderThan?: string
  readonly limit?: string
}

export const DEFAULT_PARKED_LIMIT = 100
export const MAX_PARKED_LIMIT = 1_000
const AGE_UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const

export interface ParkedFailureDeps {
  /** Listing and discarding need Redis only; a retry needs the clients too (and reads Dataverse's metadata once). */
  readonly parked: Pick<ParkedChangeStore, 'get' | 'list' | 'discard'>
  /** Each direction's retry deps (parked-change-retry-deps.ts), asked for only when an entry of that direction is retried. */
  readonly retryDeps: ParkedChangeRetryDepsOfBothDirections
  readonly now?: () => Date
}

/** Pure: the store's filter from the query; `extra` more entries are asked for, to tell whether more exist. */
export function parkedChangeFilter (query: ParkedFailureQuery, now: Date, extra = 0): ParkedChangeFilter {
  const limit = query.limit === undefined ? DEFAULT_PARKED_LIMIT : Number(query.limit)
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PARKED_LIMIT) throw new AdminBadRequestError('INVALID_LIMIT', `limit must be an integer from 1 to ${MAX_PARKED_LIMIT}`)
  let parkedBefore: Date | undefined
  if (query.olderThan !== undefined) {
    const age = /^(\d{1,6})([smhd])$/.exec(query.olderThan)
    if (age === null) throw new AdminBadRequestError('INVALID_AGE', 'olderThan must be a number and a unit s, m, h or d, e.g. 30m or 2d')
    parkedBefore = new Date(now.getTime() - Number(age[1]) * AGE_UNIT_MS[age[2] as keyof typeof AGE_UNIT_MS])
  }
  return {
    ...(query.code === undefined ? {} : { code: query.code }),
    ...(query.direction === undefined ? {} : { direction: query.direction }),
    ...(query.table === undefined ? {} : { table: query.table }),
    ...(parkedBefore === undefined ? {} : { parkedBefore }),
    limit: limit + extra
  }
}

export async function listParkedFailures (deps: ParkedFailureDeps, query: ParkedFailureQuery): Promise<{ entries: ParkedChange[], more: boolean }> {
  const filter = parkedChangeFilter(query, now(deps), 1)
  const entries = await deps.parked.list(filter)
  const limit = (filter.limit ?? 1) - 1
  return { entries: entries.slice(0, limit), more: entries.length > limit }
}

export async function getParkedFailure (deps: ParkedFailureDeps, id: string): Promise<ParkedChange> {
  const entry = await admitted(async () => await deps.parked.get(id))
  if (entry === undefined) throw notFound()
  return entry
}

/** What a retry did, either direction's words (parked-change-retry.ts, dynamics-parked-change-retry.ts). */
export type ParkedFailureRetryResult = ParkedChangeRetryResult | DynamicsParkedChangeRetryResult

/** Retries one entry by its direction: a Marketo change read from Marketo again, a Dynamics record from Dataverse. */
export async function retryParkedFailure (deps: ParkedFailureDeps, id: string, log?: Logger): Promise<ParkedFailureRetryResult> {
  return await admitted(async () => {
    const entry = await deps.parked.get(id)
    if (entry === undefined) throw notFound()
    return entry.direction === 'marketo-to-dynamics'
      ? await retryParkedChange(loggingTo(await deps.retryDeps.marketoToDynamics(), log), id)
      : await retryDynamicsParkedChange(loggingTo(await deps.retryDeps.dynamicsToMarketo(), log), id)
  })
}

/**
 * Retries what the filter selects, both directions unless it names one, oldest first. The limit is
 * the selection's, not each direction's: the entries are listed once, and each direction's retry is
 * asked for as many of its own as that list holds (its list is the same one, filtered by direction,
 * so it takes the same entries). Answered in the list's order.
 */
export async function retryParkedFailures (deps: ParkedFailureDeps, query: ParkedFailureQuery, log?: Logger): Promise<Array<{ id: string, result: ParkedFailureRetryResult }>> {
  const filter = parkedChangeFilter(query, now(deps))
  const selected = await deps.parked.list(filter)
  const count = (direction: ParkedDirection): number => selected.filter((entry) => entry.direction === direction).length
  const marketoToDynamics = count('marketo-to-dynamics')
  const dynamicsToMarketo = count('dynamics-to-marketo')
  // One after the other: a record parked in both directions is never retried by both at once.
  const results = new Map<string, ParkedFailureRetryResult>([
    ...(marketoToDynamics === 0 ? [] : await retryParkedChanges(loggingTo(await deps.retryDeps.marketoToDynamics(), log), { ...filter, direction: 'marketo-to-dynamics', limit: marketoToDynamics })),
    ...(dynamicsToMarketo === 0 ? [] : await retryDynamicsParkedChanges(loggingTo(await deps.retryDeps.dynamicsToMarketo(), log), { ...filter, direction: 'dynamics-to-marketo', limit: dynamicsToMarketo }))
  ])
  // Listed order first; an entry parked between the list and a retry's own (one cleared meanwhile left room) after.
  const order = new Map(selected.map((entry, index) => [entry.id, index]))
  return [...results]
    .sort(([a], [b]) => (order.get(a) ?? order.size) - (order.get(b) ?? order.size))
    .map(([id, result]) => ({ id, result }))
}

export async function discardParkedFailure (deps: ParkedFailureDeps, id: string): Promise<void> {
  if (!await admitted(async () => await deps.parked.discard(id))) throw notFound()
}

export async function discardParkedFailures (deps: ParkedFailureDeps, query: ParkedFailureQuery): Promise<string[]> {
  const parked = deps.parked
  const entries = await parked.list(parkedChangeFilter(query, now(deps)))
  const discarded: string[] = []
  for (const entry of entries) if (await parked.discard(entry.id)) discarded.push(entry.id)
  return discarded
}

function now (deps: ParkedFailureDeps): Date {
  return (deps.now ?? (() => new Date()))()
}

function notFound (): AdminNotFoundError {
  return new AdminNotFoundError('PARKED_CHANGE_NOT_FOUND', 'no parked change with this id')
}

/** The store's own errors as HTTP answers: an id that cannot be one is a 400, an unknown one a 404. */
async function admitted<T> (run: () => Promise<T>): Promise<T> {
  try {
    return await run()
  } catch (error) {
    if (error instanceof ParkedChangeError) {
      if (error.code === 'PARKED_CHANGE_NOT_FOUND') throw notFound()
      throw new AdminBadRequestError(error.code, 'not a parked change id: <direction>:<lead|contact>:<record GUID>')
    }
    throw error
  }
}

/**
 * The retry's deps logging to the request's logger when one is given, so each line of a retry
 * carries the admin request's `reqId` (issue 13 §7): an operator finds what one click did.
 */
function loggingTo<Deps extends { readonly logger: Logger }> (deps: Deps, log: Logger | undefined): Deps {
  return log === undefined ? deps : { ...deps, logger: log }
}
