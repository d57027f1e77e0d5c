import { setTimeout as delay } from 'node:timers/promises'
import type { Logger } from 'pino'
import { DataverseError, DataverseUnavailableError } from './dataverse-errors.ts'
import { ConcurrencyLimit } from './concurrency-limit.ts'
import type { AccessTokenProvider } from './access-token-provider.ts'
import type { ConcurrencyGate } from './shared-concurrency-limit.ts'
import { fetchFailureCode, type OutsideCallObserver } from '../metrics/outside-calls.ts'

/**
 * A small Dataverse Web API client: JSON with OData headers (reference §1.2), one retry policy,
 * bounded concurrency, typed errors. Dataverse's service protection limits are per user
 * (6,000 requests / 5 min, 52 concurrent — reference §5), so every call of this process goes
 * through one concurrency limit, and a 429 is waited out for exactly `Retry-After`.
 */

export interface DataverseClientOptions {
  /** Environment URL, e.g. https://contoso.crm.dynamics.com */
  readonly url: string
  readonly tokens: AccessTokenProvider
  readonly logger: Logger
  readonly maxConcurrentRequests: number
  /**
   * The limit every process shares (shared-concurrency-limit.ts), taken after this process's own:
   * the in-process limit keeps one process from queueing all its requests in Redis.
   */
  readonly sharedLimit?: ConcurrencyGate
  readonly requestTimeoutMs: number
  readonly retry?: Partial<RetryPolicy>
  /** Told of every request's answer (src/metrics/outside-calls.ts): status codes only. */
  readonly observer?: OutsideCallObserver
}

export interface RetryPolicy {
  /** Tries for transient failures (5xx, network, timeout) of idempotent requests, the first included. */
  readonly maxAttempts: number
  readonly baseDelayMs: number
  readonly maxDelayMs: number
  /** 429s waited out before giving up; a throttled request was not executed, so any method may retry. */
  readonly maxThrottleRetries: number
  /** Longest Retry-After honoured; a longer one fails the call so the job can be retried later. */
  readonly maxRetryAfterMs: number
}

const DEFAULT_RETRY: RetryPolicy = {
  maxAttempts: 4,
  baseDelayMs: 250,
  maxDelayMs: 5_000,
  maxThrottleRetries: 5,
  maxRetryAfterMs: 60_000
}

export interface QueryOptions {
  readonly select?: readonly string[]
  readonly filter?: string
  readonly top?: number
  readonly orderBy?: string
  /** Stop following `@odata.nextLink` after this many rows. */
  readonly maxRows?: number
}

export interface TrackedPage<T> {
  readonly value: T[]
  /** The next page of this read; absent on its last page. */
  readonly nextLink: string | undefined
  /** On the last page only: where the changes since this read start. Absent when the table's tracking is off. */
  readonly deltaLink: string | undefined
  /**
   * Whether Dataverse said it honoured `odata.track-changes` (`Preference-Applied`, reference §1.2,
   * §2). A table without change tracking ignores the preference and does not name it.
   */
  readonly trackChangesApplied: boolean
}

export interface QueryPage<T> {
  readonly value: T[]
  /** Dataverse answered a nextLink: rows past this page match the query too. */
  readonly hasMore: boolean
  /** Dataverse's clock when it answered (HTTP `Date`, whole seconds); undefined when the header is missing. */
  readonly serverTime: Date | undefined
}

interface RequestOptions {
  readonly body?: unknown
  readonly headers?: Record<string, string>
  /** Whether sending twice is harmless. A create is not: its outcome must be looked up instead. */
  readonly idempotent: boolean
}

interface DataverseResponse {
  readonly status: number
  readonly headers: Headers
  readonly json: unknown
}

const GUID_IN_ENTITY_ID = /\(([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\)$/i

export class DataverseClient {
  readonly #apiBase: string
  readonly #options: DataverseClientOptions
  readonly #retry: RetryPolicy
  readonly #limit: ConcurrencyLimit

  constructor (options: DataverseClientOptions) {
    this.#options = options
    this.#apiBase = `${options.url.replace(/\/+$/, '')}/api/data/v9.2/`
    this.#retry = { ...DEFAULT_RETRY, ...options.retry }
    this.#limit = new ConcurrencyLimit(options.maxConcurrentRequests)
  }


  async retrieveMultiple<T> (entitySet: string, query: QueryOptions = {}): Promise<T[]> {
    let path: string | undefined = collectionPath(entitySet, query)
    const rows: T[] = []
    const maxRows = query.maxRows ?? 50_000
    while (path !== undefined && rows.length < maxRows) {
      const page = await this.#request('GET', path, { idempotent: true })
      const body = page.json as { value?: T[]; '@odata.nextLink'?: string }
      rows.push(...(body.value ?? []))
      const next = body['@odata.nextLink']
      if (next !== undefined && !next.startsWith(this.#apiBase)) {
        // Never follow a link elsewhere: it would carry our bearer token to another host.
        throw new DataverseError(page.status, 'FOREIGN_NEXT_LINK', 'Dataverse answered a nextLink outside the environment URL')
      }
      path = next?.slice(this.#apiBase.length)
    }
    return rows.slice(0, maxRows)
  }

  /**
   * One page of a change-tracked read (reference §2): `pathOrLink` is a collection path relative to
   * the Web API (`leads?$select=…`, the initial full read) or an absolute `@odata.nextLink` /
   * `@odata.deltaLink` that Dataverse answered before. Every request carries
   * `Prefer: odata.track-changes` (with `odata.maxpagesize` when given), as dynamics-web-api sends
   * its Prefer on every page it follows. A GET, so it is retried like any read; an expired delta
   * token is a DataverseError with code 0x80044352 for the caller to answer with a full read.
   */
  async retrieveTrackedPage<T> (pathOrLink: string, options: { readonly maxPageSize?: number, readonly formattedValues?: boolean } = {}): Promise<TrackedPage<T>> {
    const path = this.#relativeToApi(pathOrLink)
    const prefer = ['odata.track-changes']
    if (options.maxPageSize !== undefined) prefer.push(`odata.maxpagesize=${options.maxPageSize}`)
    // Option-set labels as `<column>@OData.Community.Display.V1.FormattedValue` (learn.microsoft.com "Formatted values").
    if (options.formattedValues === true) prefer.push('odata.include-annotations="OData.Community.Display.V1.FormattedValue"')
    const page = await this.#request('GET', path, { idempotent: true, headers: { Prefer: prefer.join(',') } })
    const body = page.json as { value?: T[], '@odata.nextLink'?: string, '@odata.deltaLink'?: string } | undefined
    const nextLink = body?.['@odata.nextLink']
    const deltaLink = body?.['@odata.deltaLink']
    // Checked on receipt too, so a link that would be refused is never saved as a cursor.
    for (const link of [nextLink, deltaLink]) if (link !== undefined) this.#relativeToApi(link)
    return { value: body?.value ?? [], nextLink, deltaLink, trackChangesApplied: preferenceApplied(page.headers.get('preference-applied'), 'odata.track-changes') }
  }

  /**
   * The first page of a plain query (no change tracking): the rows, whether Dataverse has more
   * (`@odata.nextLink`, not followed: a keyset reader asks for the next page by its own filter),
   * and Dataverse's own clock from the response's `Date` header, so a reader can tell how old a
   * `modifiedon` is without trusting this machine's clock (table-watermark-read.ts).
   */
  async retrieveQueryPage<T> (entitySet: string, query: QueryOptions, options: { readonly maxPageSize?: number, readonly formattedValues?: boolean } = {}): Promise<QueryPage<T>> {
    const prefer: string[] = []
    if (options.maxPageSize !== undefined) prefer.push(`odata.maxpagesize=${options.maxPageSize}`)
    if (options.formattedValues === true) prefer.push('odata.include-annotations="OData.Community.Display.V1.FormattedValue"')
    const page = await this.#request('GET', collectionPath(entitySet, query), { idempotent: true, ...(prefer.length === 0 ? {} : { headers: { Prefer: prefer.join(',') } }) })
    const body = page.json as { value?: T[], '@odata.nextLink'?: string } | undefined
    const date = Date.parse(page.headers.get('date') ?? '')
    return { value: body?.value ?? [], hasMore: body?.['@odata.nextLink'] !== undefined, serverTime: Number.isNaN(date) ? undefined : new Date(date) }
  }

  /**
   * An absolute link must lie on the environment's Web API: following one elsewhere would carry our
   * bearer token to another host. A relative path is taken as relative to the Web API.
   */
  #relativeToApi (pathOrLink: string): string {
    // Resolved as fetch will resolve it: a protocol-relative `//host/…` or a `../` is caught too.
    if (!new URL(pathOrLink, this.#apiBase).href.startsWith(this.#apiBase)) {
      throw new DataverseError(0, 'FOREIGN_NEXT_LINK', 'a Dataverse link outside the environment URL is never followed')
    }
    return pathOrLink.startsWith(this.#apiBase) ? pathOrLink.slice(this.#apiBase.length) : pathOrLink
  }

  /**
   * The caller's own systemuser id (the `WhoAmI` function): the application user the service writes
   * as, which Dataverse records in `_modifiedby_value` of every row it writes (issue 12 §6).
   */
  /**
   * Whether a token for Dataverse can be had (the readiness check): MSAL answers from its cache
   * until the token nears expiry, so this asks Azure AD about once an hour.
   */
  async checkAccessToken (): Promise<void> {
    await this.#options.tokens.getAccessToken()
  }

  async whoAmI (): Promise<string> {
    const page = await this.#request('GET', 'WhoAmI', { idempotent: true })
    const userId = (page.json as { UserId?: unknown } | undefined)?.UserId
    if (typeof userId !== 'string') throw new DataverseError(page.status, 'WHO_AM_I_FAILED', 'WhoAmI answered without a UserId')
    return userId.toLowerCase()
  }

  /** POST a new row; answers its id (from `OData-EntityId`, reference §1.3). */
  async create (entitySet: string, record: Record<string, unknown>): Promise<string> {
    const response = await this.#request('POST', entitySet, { body: record, idempotent: false })
    const entityId = response.headers.get('odata-entityid') ?? ''
    const id = GUID_IN_ENTITY_ID.exec(entityId)?.[1]
    if (id === undefined) throw new DataverseError(response.status, 'NO_ENTITY_ID', 'Dataverse answered a create without an OData-EntityId')
    return id.toLowerCase()
  }

  /**
   * The `UpdateMultiple` bulk message: `POST {set}/Microsoft.Dynamics.CRM.UpdateMultiple` with
   * `{"Targets":[…]}`, each target carrying its primary key and the mandatory `@odata.type`
   * (reference §4; learn.microsoft.com "Use bulk operation messages"). Answers 204; on a standard
   * table one transaction, so a rejection means no target was written. One request toward the
   * service protection limits however many targets (§5).
   *
   * Retried like a read on 5xx/timeouts: it only sets the given values on rows that already exist,
   * so sending it again after an answer that never came leaves the rows as one send would. The
   * cost is a second version of each row, which change tracking reports, authored by our
   * application user and equal to what we wrote: the sync's echo rule drops it.
   */
  async updateMultiple (entitySet: string, logicalName: string, targets: ReadonlyArray<Readonly<Record<string, unknown>>>): Promise<void> {
    await this.#request('POST', `${entitySet}/Microsoft.Dynamics.CRM.UpdateMultiple`, {
      body: { Targets: targets.map((target) => ({ ...target, '@odata.type': `Microsoft.Dynamics.CRM.${logicalName}` })) },
      idempotent: true
    })
  }

  async #request (method: string, path: string, options: RequestOptions): Promise<DataverseResponse> {
    const entitySet = path.split(/[?(/]/)[0]
    let throttled = 0
    for (let attempt = 1; ; attempt++) {
      let waitMs: number
      try {
        // The token first, outside the concurrency limit: a slow or hung Azure AD must not hold
        // slots that requests with a token could use. The provider bounds its own wait and caches
        // the token, so this costs nothing per request; its errors are not Dataverse's to retry.
        const token = await this.#options.tokens.getAccessToken()
        const shared = this.#options.sharedLimit
        return await this.#limit.run(async () => shared === undefined
          ? await this.#send(method, path, token, options)
          : await shared.run(() => this.#send(method, path, token, options)))
      } catch (error) {
        if (error instanceof DataverseError && error.status === 429) {
          const retryAfterMs = retryAfterToMs((error.cause as { retryAfter?: string | null } | undefined)?.retryAfter)
          if (++throttled > this.#retry.maxThrottleRetries || retryAfterMs > this.#retry.maxRetryAfterMs) {
            throw new DataverseUnavailableError(`Dynamics kept throttling ${method} ${entitySet}`, { cause: error })
          }
          waitMs = retryAfterMs
          attempt-- // throttling does not use up the transient-failure budget
        } else if (isTransient(error)) {
          if (!options.idempotent || attempt >= this.#retry.maxAttempts) {
            // Dynamics' code and status only: a 5xx message can quote the record's values (a SQL error
            // text), and this message reaches failed jobs in Redis and the logs.
            throw new DataverseUnavailableError(`Dynamics did not complete ${method} ${entitySet}: ${transientReason(error)}`, { cause: error })
          }
          // Full jitter: spreads the retries of many workers hitting the same outage.
          waitMs = Math.random() * Math.min(this.#retry.maxDelayMs, this.#retry.baseDelayMs * 2 ** (attempt - 1))
        } else {
          throw error
        }
        this.#options.logger.warn({ method, entitySet, attempt, throttled, waitMs: Math.round(waitMs), code: (error as { code?: string }).code }, 'dataverse request retried')
        await delay(waitMs)
      }
    }
  }

  async #send (method: string, path: string, token: string, options: RequestOptions): Promise<DataverseResponse> {
    const headers: Record<string, string> = {
      Accept: 'application/json',
      'OData-MaxVersion': '4.0',
      'OData-Version': '4.0',
      Authorization: `Bearer ${token}`,
      ...options.headers
    }
    if (options.body !== undefined) headers['Content-Type'] = 'application/json; charset=utf-8'
    const observer = this.#options.observer
    let response: Response
    try {
      response = await fetch(new URL(path, this.#apiBase), {
        method,
        headers,
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
        signal: AbortSignal.timeout(this.#options.requestTimeoutMs),
        redirect: 'error'
      })
    } catch (error) {
      observer?.observeCall('dynamics', { outcome: 'error', code: fetchFailureCode(error) })
      throw error
    }
    observer?.observeCall('dynamics', response.ok ? { outcome: 'ok' } : { outcome: 'error', code: response.status === 429 ? '429' : `http_${response.status}` })
    const text = await response.text()
    const isJson = (response.headers.get('content-type') ?? '').startsWith('application/json')
    const json = isJson && text !== '' ? JSON.parse(text) as unknown : undefined
    if (response.ok) return { status: response.status, headers: response.headers, json }
    const error = (json as { error?: { code?: string; message?: string } } | undefined)?.error
    throw new DataverseError(response.status, error?.code ?? '', error?.message ?? `HTTP ${response.status} ${response.statusText}`, {
      cause: { retryAfter: response.headers.get('retry-after') }
    })
  }
}

function isTransient (error: unknown): boolean {
  if (error instanceof DataverseError) return error.status >= 500 || error.status === 408
  // fetch rejects with TypeError('fetch failed', { cause }) on network failure and a TimeoutError
  // on our timeout; any other TypeError is a bug, and retrying a bug only hides it.
  return (error instanceof TypeError && error.message === 'fetch failed') ||
    (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError'))
}

function retryAfterToMs (header: string | null | undefined): number {
  const seconds = Number(header)
  if (header !== null && header !== undefined && header !== '' && Number.isFinite(seconds)) return Math.max(0, seconds * 1000)
  const date = header === null || header === undefined ? Number.NaN : Date.parse(header)
  return Number.isFinite(date) ? Math.max(0, date - Date.now()) : 1_000
}

/** `<set>?$select=…&$filter=…&$orderby=…&$top=…`, the filter and order percent-encoded. */
function collectionPath (entitySet: string, query: QueryOptions): string {
  const params: string[] = []
  if (query.select !== undefined) params.push(`$select=${query.select.join(',')}`)
  if (query.filter !== undefined) params.push(`$filter=${encodeURIComponent(query.filter)}`)
  if (query.orderBy !== undefined) params.push(`$orderby=${encodeURIComponent(query.orderBy)}`)
  if (query.top !== undefined) params.push(`$top=${query.top}`)
  return `${entitySet}${params.length > 0 ? `?${params.join('&')}` : ''}`
}

/**
 * Whether a `Preference-Applied` header names the preference `name`: a comma-joined list of
 * preferences, each `name` or `name=value` (reference §1.2: `odata.track-changes`,
 * `odata.maxpagesize=2`), names compared without case as OData's are.
 */
export function preferenceApplied (header: string | null | undefined, name: string): boolean {
  if (header === null || header === undefined) return false
  const wanted = name.toLowerCase()
  return header.split(',').some((preference) => preference.split('=')[0]!.trim().toLowerCase() === wanted)
}

/** OData string literal: single quotes doubled (reference §1.10). */
export function odataString (value: string): string {
  return `'${value.replaceAll("'", "''")}'`
}

/** What a transient failure was, without its message: Dataverse's code and HTTP status, or the network error's code. */
function transientReason (error: unknown): string {
  if (error instanceof DataverseError) return `HTTP ${error.status} ${error.code}`
  const code = (error as { code?: unknown, cause?: { code?: unknown } }).code ?? (error as { cause?: { code?: unknown } }).cause?.code
  return typeof code === 'string' ? code : (error as Error).name
}
