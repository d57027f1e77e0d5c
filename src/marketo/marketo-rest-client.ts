import { setTimeout as delay } from 'node:timers/promises'
import type { Logger } from 'pino'
import { nextMarketoQuotaReset, type MarketoCallGate } from './marketo-call-budget.ts'
import { MarketoApiError, MarketoAuthError, MarketoQuotaExhaustedError, MarketoRedirectError } from './marketo-errors.ts'
import type { MarketoFieldDescription } from '../sync/field-mapping-check.ts'
import { fetchFailureCode, type OutsideCallObserver } from '../metrics/outside-calls.ts'

/**
 * The Marketo REST calls this service makes, and nothing more: every call is charged to the
 * subscription's shared 50,000-a-day budget (reference §2.4), so callers batch (≤ 300 ids a call)
 * and only ask for what the invocation did not carry.
 */

export interface MarketoRestClientOptions {
  /** REST and identity base, e.g. https://123-ABC-456.mktorest.com */
  readonly baseUrl: string
  readonly clientId: string
  readonly clientSecret: string
  readonly requestTimeoutMs?: number
  /**
   * The call budget shared with every other process (src/marketo/marketo-call-budget.ts): each REST
   * call takes a slot first and gives it back once answered. None: calls are not paced here.
   */
  readonly callBudget?: MarketoCallGate
  /**
   * Times a call refused with 606 (rate) or 615 (concurrency) is tried again after a jittered
   * exponential wait from `rateLimitBackoffMs`; default 0, the error is thrown at once. Both codes
   * mean "not now", and Adobe advises backing off exponentially (reference §2.4 [BP]).
   */
  readonly rateLimitRetries?: number
  readonly rateLimitBackoffMs?: number
  /** Where a wait for a 606/615 is logged (code, retry, wait; never the call's data), so ops see why calls were slow. */
  readonly logger?: Pick<Logger, 'warn'>
  /** Told of every REST call's answer (src/metrics/outside-calls.ts): Marketo's error code only, never its message. */
  readonly observer?: OutsideCallObserver
}

interface Envelope<T> {
  readonly success: boolean
  readonly result?: T[]
  readonly errors?: Array<{ code: string; message: string }>
  readonly moreResult?: boolean
  readonly nextPageToken?: string
}

/** One page of Get Lead Changes as Marketo sent it; `lead-change-feed.ts` reads the activities. */
export interface LeadChangesPage {
  readonly activities: readonly unknown[]
  /** Always present (reference §2.6): where the next read starts, even when nothing more is there yet. */
  readonly nextPageToken: string
  readonly moreResult: boolean
}

/** One field of Describe2's `result[0].fields` (reference §2.5). */
interface Describe2Field {
  readonly name: string
  readonly dataType: string
  readonly length?: number | null
  readonly updateable?: boolean
}

/** Token invalid / expired: fetch a new one and repeat the call once (§2.1). */
const TOKEN_ERRORS = new Set(['601', '602'])
/** Rate (100 per 20 s) and concurrency (10) refusals: the call was not executed, so repeating it is safe (§2.3). */
const LIMIT_ERRORS = new Set(['606', '615'])
/** Daily quota reached, until 12:00 AM CST (§2.3). */
const QUOTA_ERROR = '607'
export const MARKETO_LEADS_PER_CALL = 300

/** A POST with no body (Approve Custom Activity Type takes none). */
const EMPTY_POST = Symbol('empty POST')

/** A custom activity attribute as Create Custom Activity Type (primary) and Create Attributes (secondary) take it (reference §2.7). */
export interface CustomActivityAttributeDefinition {
  readonly apiName: string
  readonly name: string
  readonly description?: string
  readonly dataType?: 'string' | 'boolean' | 'integer' | 'float' | 'link' | 'email' | 'currency' | 'date' | 'datetime' | 'phone' | 'text'
}

export interface CustomActivityTypeDefinition {
  readonly apiName: string
  readonly name: string
  readonly description?: string
  readonly triggerName: string
  readonly filterName: string
  readonly primaryAttribute: CustomActivityAttributeDefinition
}

/** What the custom activity type endpoints answer, as far as this service reads it. */
export interface CustomActivityTypeSummary {
  readonly id: number
  readonly apiName: string
  /** `draft`, `approved`, `approved with draft` or `deleted` (reference §2.7). */
  readonly status: string
}

/** Describe Custom Activity Type's answer (reference §2.7): one version of the type, with its secondary attributes. */
export interface CustomActivityTypeDescription extends CustomActivityTypeSummary {
  readonly attributes?: ReadonlyArray<{ readonly apiName: string, readonly name?: string, readonly dataType?: string }>
}

/** One record of Add Custom Activities (reference §2.7). */
export interface CustomActivityRecord {
  readonly leadId: number
  /** ISO 8601. */
  readonly activityDate: string
  readonly activityTypeId: number
  readonly primaryAttributeValue: string
  readonly attributes: ReadonlyArray<{ readonly apiName: string, readonly value: string | number | boolean | null }>
}

export type AddCustomActivityResult =
  | { readonly id?: number, readonly marketoGUID?: string, readonly status: 'added' }
  | { readonly status: 'skipped', readonly errors?: ReadonlyArray<{ readonly code: string, readonly message: string }> }

export type SyncLeadsAction = 'createOrUpdate' | 'updateOnly' | 'createOnly'

/** One record's outcome in a Sync Leads answer (reference §2.5). */
export type SyncLeadResult =
  | { readonly id: number, readonly status: 'created' | 'updated' }
  | { readonly status: 'skipped', readonly reasons?: ReadonlyArray<{ readonly code: string, readonly message: string }> }

/** Marketo answers a longer request URI with HTTP 414 (marketo-rest-and-ssfs.md §2.2). */
const MAX_GET_URI_LENGTH = 8 * 1024

export class MarketoRestClient {
  readonly #options: MarketoRestClientOptions
  #token: { value: string; expiresAt: number } | undefined
  #pendingToken: Promise<string> | undefined
  #restCalls = 0

  constructor (options: MarketoRestClientOptions) {
    this.#options = { ...options, baseUrl: options.baseUrl.replace(/\/+$/, '') }
  }

  /** Whether Marketo's identity endpoint gives us a token (the readiness check): cached, and identity calls cost no budget (§2.1). */
  async checkAccessToken (): Promise<void> {
    await this.#accessToken()
  }

  /** REST calls made (identity calls excluded: Marketo does not count those, §2.1). */
  get restCallCount (): number {
    return this.#restCalls
  }

  async getLeadsByIds (ids: readonly number[], fields: readonly string[]): Promise<Array<Record<string, unknown>>> {
    const leads: Array<Record<string, unknown>> = []
    for (let start = 0; start < ids.length; start += MARKETO_LEADS_PER_CALL) {
      const chunk = ids.slice(start, start + MARKETO_LEADS_PER_CALL)
      const query = new URLSearchParams({ filterType: 'id', filterValues: chunk.join(','), fields: ['id', ...fields].join(',') })
      leads.push(...await this.#get<Record<string, unknown>>(`/rest/v1/leads.json?${query}`))
    }
    return leads
  }

  /**
   * Get Leads by Filter Type (marketo-rest-and-ssfs.md, Get Leads by Filter Type): up to 300
   * filter values a call. A value can match several persons (an email is not unique in Marketo),
   * so a call's answer can run past one page: its nextPageToken is followed.
   */
  async getLeadsBy (filterType: string, values: readonly string[], fields: readonly string[]): Promise<Array<Record<string, unknown>>> {
    const leads: Array<Record<string, unknown>> = []
    for (let start = 0; start < values.length; start += MARKETO_LEADS_PER_CALL) {
      const chunk = values.slice(start, start + MARKETO_LEADS_PER_CALL)
      const query = new URLSearchParams({ filterType, filterValues: chunk.join(','), fields: ['id', filterType, ...fields.filter((field) => field !== filterType)].join(',') })
      for (let pageToken: string | undefined; ;) {
        if (pageToken !== undefined) query.set('nextPageToken', pageToken)
        const page = await this.#getPage<Record<string, unknown>>(`/rest/v1/leads.json?${query}`)
        leads.push(...page.result ?? [])
        if (page.moreResult !== true || page.nextPageToken === undefined) break
        pageToken = page.nextPageToken
      }
    }
    return leads
  }

  /**
   * A date-based paging token for the activity feeds (Get Paging Token, reference §2.6): the
   * starting point of a lead-change feed that has no saved token yet.
   */
  async getActivitiesPagingToken (since: Date): Promise<string> {
    // Whole seconds, as Marketo writes datetimes (§2.2); rounding down reads a moment more, never less.
    const query = new URLSearchParams({ sinceDatetime: since.toISOString().replace(/\.\d{3}Z$/, 'Z') })
    return requirePageToken(await this.#getPage<never>(`/rest/v1/activities/pagingtoken.json?${query}`), 'Get Paging Token')
  }

  /**
   * One page of Get Lead Changes (reference §2.6): Change Data Value and New Lead activities after
   * `pageToken`, changes reported for `fields` only. All fields go in one call: Marketo documents no
   * maximum for `fields` here (the "up to 10" limit is Get Lead Activities' `activityTypeIds`), and
   * splitting them would need one token per group and multiply calls against the daily budget
   * (§2.4). What bounds the list is the 8 KB URI (§2.2): hundreds of field names; past it Marketo
   * answers HTTP 414, an `HTTP_414` error here.
   */
  async getLeadChanges (pageToken: string, fields: readonly string[], batchSize = MARKETO_LEADS_PER_CALL): Promise<LeadChangesPage> {
    const query = new URLSearchParams({ nextPageToken: pageToken, fields: fields.join(','), batchSize: String(batchSize) })
    const page = await this.#getPage<unknown>(`/rest/v1/activities/leadchanges.json?${query}`)
    return {
      activities: page.result ?? [],
      nextPageToken: requirePageToken(page, 'Get Lead Changes'),
      moreResult: page.moreResult === true
    }
  }

  /**
   * Every person field of the instance, standard and custom, for the start-up check of the field
   * mapping. Describe2 (`GET /rest/v1/leads/describe2.json`, reference §2.5), because Adobe marks the
   * older Describe as superseded by it; one call, whatever the field count. Its `updateable` is the
   * REST API's own verdict on writing a field (false for Marketo-computed ones such as the Sales
   * Insight scores), so `readOnly` is its negation.
   */
  async describeLeads (): Promise<MarketoFieldDescription[]> {
    const [leadObject] = await this.#get<{ name?: string; fields?: Describe2Field[] }>('/rest/v1/leads/describe2.json')
    if (leadObject?.fields === undefined) throw new MarketoApiError('MALFORMED_DESCRIBE', 'Marketo\'s Describe2 answer carried no fields')
    return leadObject.fields.map((field) => ({
      name: field.name,
      dataType: field.dataType,
      readOnly: field.updateable !== true,
      length: typeof field.length === 'number' ? field.length : null
    }))
  }

  /**
   * Sync Leads (`POST /rest/v1/leads.json`, reference §2.5): up to 300 records a call, one result per
   * record in input order — `created`/`updated` with the person's id, or `skipped` with Marketo's
   * reasons (a record refused does not fail the others). `createOrUpdate` matches on `lookupField`
   * (default email); `updateOnly` with lookupField `id` writes persons by id and never creates one.
   */
  async syncLeads (action: SyncLeadsAction, lookupField: string, input: ReadonlyArray<Readonly<Record<string, unknown>>>): Promise<SyncLeadResult[]> {
    const results: SyncLeadResult[] = []
    for (let start = 0; start < input.length; start += MARKETO_LEADS_PER_CALL) {
      const chunk = input.slice(start, start + MARKETO_LEADS_PER_CALL)
      const page = await this.#getPage<SyncLeadResult>('/rest/v1/leads.json', { action, lookupField, input: chunk })
      const answered = page.result ?? []
      // One result per record is Marketo's contract; fewer would leave records unaccounted for.
      if (answered.length !== chunk.length) throw new MarketoApiError('SYNC_RESULT_MISMATCH', `Marketo answered ${answered.length} results for ${chunk.length} records`)
      results.push(...answered)
    }
    return results
  }

  /**
   * Get Custom Activity Types (`GET /rest/v1/activities/external/types.json`, reference §2.7):
   * every custom type of the instance, drafts included, with its `status`.
   */
  async getCustomActivityTypes (): Promise<CustomActivityTypeSummary[]> {
    return await this.#get<CustomActivityTypeSummary>('/rest/v1/activities/external/types.json')
  }

  /** Create Custom Activity Type (reference §2.7): the type is a draft until approved. */
  async createCustomActivityType (definition: CustomActivityTypeDefinition): Promise<CustomActivityTypeSummary> {
    const { apiName, name, description, triggerName, filterName, primaryAttribute } = definition
    // The documented body only (§2.7): whatever else a caller's object holds is not sent.
    return await this.#one<CustomActivityTypeSummary>('/rest/v1/activities/external/type.json', { apiName, name, description, triggerName, filterName, primaryAttribute })
  }

  /**
   * Create Custom Activity Type Attributes (`POST …/type/{apiName}/attributes/create.json`, reference
   * §2.7): secondary attributes are added to the type's draft, never through Create Custom Activity
   * Type (whose body has none); an approved type becomes "approved with draft" until approved again.
   */
  async createCustomActivityTypeAttributes (apiName: string, attributes: readonly CustomActivityAttributeDefinition[]): Promise<CustomActivityTypeDescription> {
    return await this.#one<CustomActivityTypeDescription>(`/rest/v1/activities/external/type/${encodeURIComponent(apiName)}/attributes/create.json`, { attributes })
  }

  /** Describe Custom Activity Type (reference §2.7): the approved version, or with `draft` the draft. */
  async describeCustomActivityType (apiName: string, options: { draft?: boolean } = {}): Promise<CustomActivityTypeDescription> {
    const query = options.draft === true ? '?draft=true' : ''
    return await this.#one<CustomActivityTypeDescription>(`/rest/v1/activities/external/type/${encodeURIComponent(apiName)}/describe.json${query}`, undefined)
  }

  /** Approve Custom Activity Type (a POST with no body, reference §2.7): only an approved type carries activities. */
  async approveCustomActivityType (apiName: string): Promise<CustomActivityTypeSummary> {
    return await this.#one<CustomActivityTypeSummary>(`/rest/v1/activities/external/type/${encodeURIComponent(apiName)}/approve.json`, EMPTY_POST)
  }

  /**
   * Add Custom Activities (`POST /rest/v1/activities/external.json`, reference §2.7): up to 300
   * records a call, one result per record in input order, `added` or `skipped` with Marketo's
   * `errors` (a refused record does not fail the others).
   */
  async addCustomActivities (input: readonly CustomActivityRecord[]): Promise<AddCustomActivityResult[]> {
    const results: AddCustomActivityResult[] = []
    for (let start = 0; start < input.length; start += MARKETO_LEADS_PER_CALL) {
      const chunk = input.slice(start, start + MARKETO_LEADS_PER_CALL)
      const answered = (await this.#getPage<AddCustomActivityResult>('/rest/v1/activities/external.json', { input: chunk })).result ?? []
      if (answered.length !== chunk.length) throw new MarketoApiError('ACTIVITY_RESULT_MISMATCH', `Marketo answered ${answered.length} results for ${chunk.length} activities`)
      results.push(...answered)
    }
    return results
  }

  async #one<T> (path: string, body: unknown): Promise<T> {
    const [first] = (await this.#getPage<T>(path, body)).result ?? []
    if (first === undefined) throw new MarketoApiError('EMPTY_RESULT', `Marketo answered no result for ${path.replace(/\?.*$/, '')}`)
    return first
  }

  async #get<T> (path: string): Promise<T[]> {
    return (await this.#getPage<T>(path)).result ?? []
  }

  /** A GET, or a POST of `body` as JSON when one is given (EMPTY_POST: a POST with no body). */
  async #getPage<T> (path: string, body?: unknown): Promise<Envelope<T>> {
    let tokenRenewed = false
    for (let limitRetries = 0; ;) {
      // The token first: identity calls are not charged (§2.1), so they take no budget slot.
      const token = await this.#accessToken()
      const answer = await this.#charged(async () => await this.#send<T>(path, token, body))
      if (answer.success) return answer
      const error = answer.errors?.[0] ?? { code: 'UNKNOWN', message: 'Marketo answered success: false' }
      const code = String(error.code)
      if (TOKEN_ERRORS.has(code) && !tokenRenewed) {
        tokenRenewed = true
        this.#token = undefined
        continue
      }
      if (LIMIT_ERRORS.has(code) && limitRetries < (this.#options.rateLimitRetries ?? 0)) {
        const waitMs = limitRetryDelay(limitRetries++, this.#options.rateLimitBackoffMs ?? 1_000)
        this.#options.logger?.warn({ code, retry: limitRetries, waitMs: Math.round(waitMs) }, 'marketo call refused by a rate or concurrency limit: waiting before repeating it')
        await delay(waitMs)
        continue
      }
      if (code === QUOTA_ERROR) {
        // Every process stops spending, not just this one: the instance has nothing left today.
        await this.#options.callBudget?.markSpentUntilReset().catch(() => undefined)
        throw new MarketoQuotaExhaustedError(error.message, nextMarketoQuotaReset(Date.now()))
      }
      throw new MarketoApiError(code, error.message)
    }
  }

  /** One REST call, inside a budget slot when there is a budget. */
  async #charged<R> (call: () => Promise<R>): Promise<R> {
    const slot = await this.#options.callBudget?.acquire()
    this.#restCalls++
    try {
      return await call()
    } finally {
      // A release that cannot reach Redis leaves the lease to expire (marketo-call-budget.ts).
      await slot?.release().catch(() => undefined)
    }
  }

  /**
   * One REST call, reported to the observer once: Marketo answers most errors (606, 607, 615) with
   * HTTP 200 and `success: false`, so the envelope's first error code is the call's outcome.
   */
  async #send<T> (path: string, token: string, body?: unknown): Promise<Envelope<T>> {
    const observer = this.#options.observer
    let envelope: Envelope<T>
    try {
      envelope = await this.#sendUnobserved<T>(path, token, body)
    } catch (error) {
      observer?.observeCall('marketo', { outcome: 'error', code: error instanceof MarketoApiError ? error.code.replace('HTTP_', 'http_') : error instanceof MarketoRedirectError ? `http_${error.status}` : fetchFailureCode(error) })
      throw error
    }
    observer?.observeCall('marketo', envelope.success ? { outcome: 'ok' } : { outcome: 'error', code: String(envelope.errors?.[0]?.code ?? 'unknown') })
    return envelope
  }

  async #sendUnobserved<T> (path: string, token: string, body?: unknown): Promise<Envelope<T>> {
    const url = `${this.#options.baseUrl}${path}`
    const headers = { Authorization: `Bearer ${token}`, Accept: 'application/json' }
    const query = path.indexOf('?')
    const request = body === EMPTY_POST
      ? { url, method: 'POST', headers }
      : body !== undefined
      ? { url, method: 'POST', body: JSON.stringify(body), headers: { ...headers, 'Content-Type': 'application/json' } }
      // A GET whose URI passes 8 KB gets HTTP 414 (300 emails in Get Leads by Filter Type do): Marketo's
      // documented workaround is a POST carrying `_method=GET` and the query as a form body (§2.2).
      : url.length > MAX_GET_URI_LENGTH && query !== -1
        ? { url: `${this.#options.baseUrl}${path.slice(0, query)}`, method: 'POST', body: `${path.slice(query + 1)}&_method=GET`, headers: { ...headers, 'Content-Type': 'application/x-www-form-urlencoded' } }
        : { url, method: 'GET', headers }
    const response = await fetch(request.url, {
      method: request.method,
      headers: request.headers,
      ...(request.body === undefined ? {} : { body: request.body }),
      signal: AbortSignal.timeout(this.#options.requestTimeoutMs ?? 30_000),
      redirect: 'manual'
    })
    refuseRedirect(response)
    if (!response.ok) throw new MarketoApiError(`HTTP_${response.status}`, `Marketo answered HTTP ${response.status}`)
    return await response.json() as Envelope<T>
  }

  /** One identity call at a time: concurrent callers share the token being fetched. */
  async #accessToken (): Promise<string> {
    // Renew a minute early: a token that expires in flight costs a 602 and a second call.
    if (this.#token !== undefined && this.#token.expiresAt - 60_000 > Date.now()) return this.#token.value
    this.#pendingToken ??= this.#fetchToken().finally(() => { this.#pendingToken = undefined })
    return await this.#pendingToken
  }

  async #fetchToken (): Promise<string> {
    const query = new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: this.#options.clientId,
      client_secret: this.#options.clientSecret
    })
    const response = await fetch(`${this.#options.baseUrl}/identity/oauth/token?${query}`, {
      headers: { Accept: 'application/json' },
      signal: AbortSignal.timeout(this.#options.requestTimeoutMs ?? 30_000),
      redirect: 'manual'
    })
    refuseRedirect(response)
    const body = await response.json().catch(() => ({})) as { access_token?: string; expires_in?: number; error?: string; error_description?: string }
    if (!response.ok || body.access_token === undefined) {
      throw new MarketoAuthError(`Marketo identity refused the client credentials: ${body.error ?? `HTTP ${response.status}`}`)
    }
    this.#token = { value: body.access_token, expiresAt: Date.now() + (body.expires_in ?? 3600) * 1000 }
    return body.access_token
  }
}

/** Both calls always answer a token (reference §2.6); without one the feed could not go on. */
function requirePageToken (page: Envelope<unknown>, call: string): string {
  if (typeof page.nextPageToken === 'string' && page.nextPageToken !== '') return page.nextPageToken
  throw new MarketoApiError('MISSING_NEXT_PAGE_TOKEN', `Marketo's ${call} answer carried no nextPageToken`)
}

/** Exponential from `backoffMs`, halved to doubled at random so refused processes do not return together. */
function limitRetryDelay (retry: number, backoffMs: number): number {
  return Math.round(backoffMs * 2 ** retry * (0.5 + Math.random()))
}

/**
 * With `redirect: 'manual'` Node's fetch hands back the 3xx itself. A redirect is refused rather
 * than followed: the identity call carries the client secret in its query and REST calls a bearer
 * token, which must reach the configured base URL and nothing else.
 */
function refuseRedirect (response: Response): void {
  if (response.status < 300 || response.status >= 400) return
  response.body?.cancel().catch(() => undefined)
  throw new MarketoRedirectError(response.status)
}
