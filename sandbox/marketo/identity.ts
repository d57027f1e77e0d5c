import { randomUUID } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { readBody, sendJson } from './http-io.ts'

/**
 * Marketo's identity service: OAuth2 client credentials as query parameters, GET or POST
 * (reference §2.1). Calling it before expiry returns the *same* token with its remaining lifetime,
 * so `expires_in` decreases across calls [AUTH][GRP].
 */

export interface ApiClientCredentials {
  readonly clientId: string
  readonly clientSecret: string
}

export type TokenCheck = 'valid' | 'invalid' | 'expired'

interface IssuedToken {
  readonly accessToken: string
  readonly clientId: string
  readonly expiresAtMs: number
  /** Set by `expireAll()`: the token answers 602 although its lifetime has not run out. */
  revoked: boolean
}

export class AccessTokenIssuer {
  readonly #clients: ReadonlyMap<string, string>
  readonly #lifetimeMs: number
  readonly #now: () => Date
  readonly #byToken = new Map<string, IssuedToken>()
  readonly #currentByClient = new Map<string, IssuedToken>()

  constructor (options: { clients: readonly ApiClientCredentials[], tokenLifetimeSeconds: number, now: () => Date }) {
    this.#clients = new Map(options.clients.map((client) => [client.clientId, client.clientSecret]))
    this.#lifetimeMs = options.tokenLifetimeSeconds * 1000
    this.#now = options.now
  }

  /** Returns undefined for unknown client id or wrong secret. */
  issue (clientId: string, clientSecret: string): { accessToken: string, expiresInSeconds: number } | undefined {
    if (this.#clients.get(clientId) !== clientSecret || clientSecret === undefined) return undefined
    const nowMs = this.#now().getTime()
    let token = this.#currentByClient.get(clientId)
    if (token === undefined || token.revoked || token.expiresAtMs <= nowMs) {
      // Real tokens look like `cdf01657-110d-4155-99a7-f986b2ff13a0:int` (reference §2.1).
      token = { accessToken: `${randomUUID()}:emu`, clientId, expiresAtMs: nowMs + this.#lifetimeMs, revoked: false }
      this.#byToken.set(token.accessToken, token)
      this.#currentByClient.set(clientId, token)
    }
    return { accessToken: token.accessToken, expiresInSeconds: Math.max(0, Math.floor((token.expiresAtMs - nowMs) / 1000)) }
  }

  check (accessToken: string): TokenCheck {
    const token = this.#byToken.get(accessToken)
    if (token === undefined) return 'invalid'
    if (token.revoked || token.expiresAtMs <= this.#now().getTime()) return 'expired'
    return 'valid'
  }

  /** Test control: every token issued so far answers 602 from now on. */
  expireAll (): void {
    for (const token of this.#byToken.values()) token.revoked = true
  }
}

/** `GET|POST /identity/oauth/token` */
export async function handleIdentityRequest (req: IncomingMessage, res: ServerResponse, url: URL, issuer: AccessTokenIssuer, scopeSuffix: string): Promise<void> {
  if (url.pathname !== '/identity/oauth/token') {
    sendJson(res, 404, { error: 'not_found', error_description: 'Unknown identity endpoint' })
    return
  }
  if (req.method !== 'GET' && req.method !== 'POST') {
    sendJson(res, 405, { error: 'invalid_request', error_description: `Method ${req.method ?? ''} not allowed` })
    return
  }
  const parameters = new URLSearchParams(url.search)
  // Documented as query parameters; a form body on POST is accepted too, as OAuth clients send it there.
  if (req.method === 'POST') {
    for (const [name, value] of new URLSearchParams(await readBody(req, 64 * 1024))) {
      if (!parameters.has(name)) parameters.set(name, value)
    }
  }
  // Identity responses are JSON with `Cache-Control: no-store` [GRP]; node-marketo-rest expects the
  // 401 body `{error, error_description}` and reports "Authentication (<error>): <description>" (§2.1, §3.4).
  res.setHeader('Cache-Control', 'no-store')
  if (parameters.get('grant_type') !== 'client_credentials') {
    sendJson(res, 400, { error: 'unsupported_grant_type', error_description: 'Unsupported grant type' }, 'application/json;charset=UTF-8')
    return
  }
  const issued = issuer.issue(parameters.get('client_id') ?? '', parameters.get('client_secret') ?? '')
  if (issued === undefined) {
    sendJson(res, 401, { error: 'invalid_client', error_description: 'Bad client credentials' }, 'application/json;charset=UTF-8')
    return
  }
  sendJson(res, 200, {
    access_token: issued.accessToken,
    token_type: 'bearer',
    expires_in: issued.expiresInSeconds,
    scope: `${parameters.get('client_id') ?? ''}@${scopeSuffix}`
  }, 'application/json;charset=UTF-8')
}
