import { MarketoApiError, MarketoAuthError, MarketoRedirectError } from './marketo-errors.ts'

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
}

interface Envelope<T> {
  readonly success: boolean
  readonly result?: T[]
  readonly errors?: Array<{ code: string; message: string }>
}

/** Token invalid / expired: fetch a new one and repeat the call once (§2.1). */
const TOKEN_ERRORS = new Set(['601', '602'])
export const MARKETO_LEADS_PER_CALL = 300

export class MarketoRestClient {
  readonly #options: MarketoRestClientOptions
  #token: { value: string; expiresAt: number } | undefined
  #pendingToken: Promise<string> | undefined
  #restCalls = 0

  constructor (options: MarketoRestClientOptions) {
    this.#options = { ...options, baseUrl: options.baseUrl.replace(/\/+$/, '') }
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

  async #get<T> (path: string): Promise<T[]> {
    for (let attempt = 1; ; attempt++) {
      const token = await this.#accessToken()
      this.#restCalls++
      const response = await fetch(`${this.#options.baseUrl}${path}`, {
        headers: { Authorization: `Bearer ${token}`, Accept: 'application/json' },
        signal: AbortSignal.timeout(this.#options.requestTimeoutMs ?? 30_000),
        redirect: 'manual'
      })
      refuseRedirect(response)
      if (!response.ok) throw new MarketoApiError(`HTTP_${response.status}`, `Marketo answered HTTP ${response.status}`)
      const body = await response.json() as Envelope<T>
      if (body.success) return body.result ?? []
      const error = body.errors?.[0] ?? { code: 'UNKNOWN', message: 'Marketo answered success: false' }
      if (TOKEN_ERRORS.has(String(error.code)) && attempt === 1) {
        this.#token = undefined
        continue
      }
      throw new MarketoApiError(String(error.code), error.message)
    }
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
