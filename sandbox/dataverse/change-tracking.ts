import { DataverseError, queryError } from './dataverse-error.ts'
import type { DataverseRecord, RowTombstone } from './record-store.ts'

/**
 * Dataverse change tracking over the Web API (reference doc §2; learn.microsoft.com "Use change
 * tracking to synchronize data with external systems"): a collection read with
 * `Prefer: odata.track-changes` answers the rows and an `@odata.deltaLink` carrying a `$deltatoken`;
 * a GET of that link answers what changed since — new and updated rows first (by version), then
 * deletes as `$deletedEntity` — and a new delta link. Every page of one read covers the same
 * snapshot (the store's version when the read began), so a write while a client pages is reported
 * by the next delta read, never lost between the two.
 *
 * The decisions here are pure; the emulator feeds them the store's rows and tombstones.
 */

/** What a `$deltatoken` stands for: every change up to `version`, as of `issuedAt`. */
export interface DeltaToken {
  readonly version: number
  readonly issuedAt: Date
}

/** Where one tracked read is: the snapshot it covers, and the last version it has returned. */
export interface TrackedReadPosition {
  readonly through: number
  readonly phase: 'rows' | 'deleted'
  readonly after: number
}

export interface TrackedPage {
  readonly rows: ReadonlyArray<Readonly<DataverseRecord>>
  readonly deletedIds: readonly string[]
  /** Where the next page starts; undefined on the last page (which carries the delta link). */
  readonly next: TrackedReadPosition | undefined
}

export interface TrackedPageInput {
  readonly rows: ReadonlyArray<Readonly<DataverseRecord>>
  readonly tombstones: readonly RowTombstone[]
  readonly primaryKey: string
  /** The delta token's version; undefined for the initial (full) read, which reports no deletes. */
  readonly since: number | undefined
  readonly position: TrackedReadPosition
  readonly pageSize: number
}

/** Dataverse's default `organization.ExpireChangeTrackingInDays` is 7 (reference doc §2). */
export const DEFAULT_DELTA_TOKEN_LIFETIME_MS = 7 * 24 * 60 * 60 * 1000

/** The four query options Dataverse refuses with `Prefer: odata.track-changes` (reference doc §2). */
const REFUSED_WITH_TRACKING = ['$filter', '$orderby', '$expand', '$top'] as const

export function refusedTrackingOption (params: URLSearchParams): DataverseError | undefined {
  const option = REFUSED_WITH_TRACKING.find((name) => params.has(name))
  return option === undefined
    ? undefined
    : queryError(`The "${option}" query parameter isn't supported when Change Tracking is enabled.`)
}

/**
 * RetrieveEntityChanges' ExpiredVersionStamp, 0x80044352: "Version stamp associated with the client
 * has expired. Please perform a full sync." The Web API status is not shown in the docs; 400 is
 * inferred (an OrganizationServiceFault on a GET). Unknown and unreadable tokens get it too, so a
 * client has one signal for "start again with a full read".
 */
export function expiredDeltaToken (): DataverseError {
  return new DataverseError(400, '0x80044352', 'Version stamp associated with the client has expired. Please perform a full sync.')
}

/**
 * `<version>!<MM/dd/yyyy HH:mm:ss>` (UTC), the shape of Dataverse's own tokens (§2:
 * `919042!08/22/2017 08:10:44`). Clients must treat it as opaque.
 */
export function encodeDeltaToken (token: DeltaToken): string {
  const date = token.issuedAt
  const two = (value: number): string => String(value).padStart(2, '0')
  return `${token.version}!${two(date.getUTCMonth() + 1)}/${two(date.getUTCDate())}/${date.getUTCFullYear()} ` +
    `${two(date.getUTCHours())}:${two(date.getUTCMinutes())}:${two(date.getUTCSeconds())}`
}

export function decodeDeltaToken (text: string): DeltaToken | undefined {
  const match = /^(\d{1,15})!(\d{2})\/(\d{2})\/(\d{4}) (\d{2}):(\d{2}):(\d{2})$/.exec(text)
  if (match === null) return undefined
  const [, version, month, day, year, hours, minutes, seconds] = match.map(Number) as number[]
  const issuedAt = new Date(Date.UTC(year ?? 0, (month ?? 1) - 1, day, hours, minutes, seconds))
  if (Number.isNaN(issuedAt.getTime())) return undefined
  return { version: version ?? 0, issuedAt }
}

/**
 * A token is good while it is younger than the lifetime, names a version the store has reached,
 * and was issued after the last "expire every token" (`expiredThrough`).
 */
export function isDeltaTokenValid (token: DeltaToken, state: { readonly now: Date, readonly lifetimeMs: number, readonly currentVersion: number, readonly expiredThrough: number }): boolean {
  return token.version > state.expiredThrough &&
    token.version <= state.currentVersion &&
    state.now.getTime() - token.issuedAt.getTime() <= state.lifetimeMs
}

export function firstPosition (through: number): TrackedReadPosition {
  return { through, phase: 'rows', after: 0 }
}

/**
 * One page of a tracked read: rows changed in (since, through] by version, then — for a delta read —
 * tombstones in that range. A tombstone is left out when its row exists again at a version the read
 * covers (re-created with the same id): the row itself is reported instead.
 */
export function readTrackedPage (input: TrackedPageInput): TrackedPage {
  const { through } = input.position
  const since = input.since ?? 0
  const rows: Array<Readonly<DataverseRecord>> = []
  const deletedIds: string[] = []

  if (input.position.phase === 'rows') {
    const floor = Math.max(since, input.position.after)
    const changed = input.rows
      .filter((row) => versionOf(row) > floor && versionOf(row) <= through)
      .sort((a, b) => versionOf(a) - versionOf(b))
    rows.push(...changed.slice(0, input.pageSize))
    if (changed.length > input.pageSize) {
      return { rows, deletedIds, next: { through, phase: 'rows', after: versionOf(rows[rows.length - 1] ?? {}) } }
    }
    if (input.since === undefined) return { rows, deletedIds, next: undefined }
  }

  const room = input.pageSize - rows.length
  const deletedAfter = input.position.phase === 'deleted' ? Math.max(since, input.position.after) : since
  const liveVersions = new Map(input.rows.map((row) => [String(row[input.primaryKey]), versionOf(row)]))
  const deletes = input.tombstones.filter((tombstone) => {
    if (tombstone.version <= deletedAfter || tombstone.version > through) return false
    const live = liveVersions.get(tombstone.id)
    return live === undefined || live > through
  })
  const taken = deletes.slice(0, room)
  deletedIds.push(...taken.map((tombstone) => tombstone.id))
  if (deletes.length > taken.length) {
    const lastTaken = taken[taken.length - 1]
    // A page full of rows ends the rows phase with no delete taken yet: start the deletes from `since`.
    return { rows, deletedIds, next: { through, phase: 'deleted', after: lastTaken === undefined ? deletedAfter : lastTaken.version } }
  }
  return { rows, deletedIds, next: undefined }
}

/** The in-read position rides in `$skiptoken`, opaque to clients like Dataverse's paging cookies. */
export function encodeTrackedSkipToken (position: TrackedReadPosition): string {
  return Buffer.from(JSON.stringify({ tracked: position.through, phase: position.phase, after: position.after })).toString('base64url')
}

export function decodeTrackedSkipToken (token: string): TrackedReadPosition {
  const position = readTrackedSkipToken(token)
  if (position === undefined) throw queryError('The $skiptoken value is not valid.')
  return position
}

/** Whether a `$skiptoken` continues a tracked read (its nextLink needs no Prefer header to be followed). */
export function isTrackedSkipToken (token: string): boolean {
  return readTrackedSkipToken(token) !== undefined
}

function readTrackedSkipToken (token: string): TrackedReadPosition | undefined {
  try {
    const parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { tracked?: unknown, phase?: unknown, after?: unknown }
    if (Number.isInteger(parsed.tracked) && Number.isInteger(parsed.after) && (parsed.phase === 'rows' || parsed.phase === 'deleted')) {
      return { through: parsed.tracked as number, phase: parsed.phase, after: parsed.after as number }
    }
  } catch {
    // not one of ours
  }
  return undefined
}

function versionOf (row: Readonly<DataverseRecord>): number {
  return typeof row.versionnumber === 'number' ? row.versionnumber : 0
}
