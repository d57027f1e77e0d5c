import { X509Certificate, timingSafeEqual, createHash, type KeyObject } from 'node:crypto'
import { aadError, type AadErrorReply } from './aad-error.ts'
import { MalformedJwtError, decodeJwt, hasValidRsaSignature, nowSeconds } from './jwt.ts'

/**
 * How the token endpoint decides which app registration is calling: `client_secret` (form or HTTP
 * Basic) or a `client_assertion` JWT signed with a registered certificate's key (RFC 7523; what
 * MSAL sends for `clientCertificate`, reference doc §8.1).
 */

export interface RegisteredClient {
  readonly clientId: string
  readonly clientSecret?: string
  readonly certificatePem?: string
}

export const JWT_BEARER_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'

/** Allowed clock difference for `nbf`/`exp` of a client assertion. */
const CLOCK_SKEW_SECONDS = 300

interface ClientCredentialKey {
  readonly publicKey: KeyObject
  /** base64url SHA-256 of the DER certificate, as MSAL puts it in `x5t#S256`. */
  readonly x5tS256: string
  /** base64url SHA-1, the legacy `x5t`. */
  readonly x5t: string
}

export interface ClientRegistry {
  find (clientId: string): { client: RegisteredClient, key?: ClientCredentialKey } | undefined
}

export function createClientRegistry (clients: readonly RegisteredClient[]): ClientRegistry {
  const byId = new Map<string, { client: RegisteredClient, key?: ClientCredentialKey }>()
  for (const client of clients) {
    if (client.certificatePem === undefined) {
      byId.set(client.clientId, { client })
      continue
    }
    const certificate = new X509Certificate(client.certificatePem)
    byId.set(client.clientId, {
      client,
      key: {
        publicKey: certificate.publicKey,
        x5tS256: createHash('sha256').update(certificate.raw).digest('base64url'),
        x5t: createHash('sha1').update(certificate.raw).digest('base64url')
      }
    })
  }
  return { find: (clientId) => byId.get(clientId) }
}

export interface ClientAuthenticationRequest {
  readonly form: URLSearchParams
  readonly authorizationHeader: string | undefined
  readonly tenantId: string
  /** Audiences a client assertion may name: the token endpoint URL(s) of this tenant. */
  readonly acceptedAssertionAudiences: readonly string[]
  readonly correlationId: string
}

export type ClientAuthenticationResult =
  | { readonly ok: true, readonly clientId: string }
  | { readonly ok: false, readonly reply: AadErrorReply }

export function authenticateClient (registry: ClientRegistry, request: ClientAuthenticationRequest): ClientAuthenticationResult {
  const { form, correlationId } = request
  const basic = parseBasicAuthorization(request.authorizationHeader)
  const clientId = form.get('client_id') ?? basic?.clientId
  if (clientId === undefined || clientId === '') {
    return fail(aadError(400, 'invalid_request', 900144, "The request body must contain the following parameter: 'client_id'.", correlationId))
  }
  const registered = registry.find(clientId)
  if (registered === undefined) {
    return fail(aadError(400, 'unauthorized_client', 700016,
      `Application with identifier '${clientId}' was not found in the directory '${request.tenantId}'.`, correlationId))
  }

  const secret = form.get('client_secret') ?? basic?.clientSecret
  const assertion = form.get('client_assertion')
  if (secret !== undefined && secret !== null) {
    const expected = registered.client.clientSecret
    if (expected === undefined || !sameSecret(secret, expected)) {
      return fail(aadError(401, 'invalid_client', 7000215,
        `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${clientId}'.`,
        correlationId))
    }
    return { ok: true, clientId }
  }
  if (assertion !== null) {
    return verifyClientAssertion(assertion, form.get('client_assertion_type'), clientId, registered.key, request)
  }
  return fail(aadError(401, 'invalid_client', 7000218,
    "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.", correlationId))
}

function verifyClientAssertion (
  assertion: string,
  assertionType: string | null,
  clientId: string,
  key: ClientCredentialKey | undefined,
  request: ClientAuthenticationRequest
): ClientAuthenticationResult {
  const { correlationId } = request
  if (assertionType !== JWT_BEARER_ASSERTION_TYPE) {
    return fail(aadError(400, 'invalid_request', 700022, `The client_assertion_type must be '${JWT_BEARER_ASSERTION_TYPE}'.`, correlationId))
  }
  let jwt
  try {
    jwt = decodeJwt(assertion)
  } catch (error) {
    if (!(error instanceof MalformedJwtError)) throw error
    return fail(aadError(401, 'invalid_client', 50027, 'JWT token is invalid or malformed.', correlationId))
  }
  if (key === undefined) {
    return fail(aadError(401, 'invalid_client', 700027,
      `Client assertion failed signature validation: no certificate is registered for application '${clientId}'.`, correlationId))
  }
  const thumbprintS256 = jwt.header['x5t#S256']
  const thumbprint = jwt.header.x5t
  const namesOtherCertificate =
    (typeof thumbprintS256 === 'string' && thumbprintS256 !== key.x5tS256) ||
    (typeof thumbprint === 'string' && thumbprint !== key.x5t)
  if (namesOtherCertificate || !hasValidRsaSignature(jwt, key.publicKey)) {
    return fail(aadError(401, 'invalid_client', 700027,
      'Client assertion failed signature validation.', correlationId))
  }
  const claims = jwt.payload
  if (claims.iss !== clientId || claims.sub !== clientId) {
    return fail(aadError(401, 'invalid_client', 700021,
      `Client assertion application identifier doesn't match 'client_id' parameter. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .`,
      correlationId))
  }
  if (typeof claims.aud !== 'string' || !request.acceptedAssertionAudiences.includes(claims.aud)) {
    return fail(aadError(401, 'invalid_client', 700212,
      `No matching federated identity record found for presented assertion audience '${String(claims.aud)}'.`, correlationId))
  }
  const now = nowSeconds()
  const expiresAt = typeof claims.exp === 'number' ? claims.exp : undefined
  const notBefore = typeof claims.nbf === 'number' ? claims.nbf : undefined
  if (expiresAt === undefined || expiresAt + CLOCK_SKEW_SECONDS < now || (notBefore !== undefined && notBefore - CLOCK_SKEW_SECONDS > now)) {
    return fail(aadError(401, 'invalid_client', 700024,
      'Client assertion is not within its valid time range.', correlationId))
  }
  return { ok: true, clientId }
}

function parseBasicAuthorization (header: string | undefined): { clientId: string, clientSecret: string } | undefined {
  if (header === undefined || !/^basic /i.test(header)) return undefined
  const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8')
  const separator = decoded.indexOf(':')
  if (separator < 0) return undefined
  // RFC 6749 §2.3.1: both halves are form-urlencoded before being joined.
  return {
    clientId: decodeURIComponent(decoded.slice(0, separator)),
    clientSecret: decodeURIComponent(decoded.slice(separator + 1))
  }
}

function sameSecret (given: string, expected: string): boolean {
  const a = Buffer.from(given)
  const b = Buffer.from(expected)
  return a.length === b.length && timingSafeEqual(a, b)
}

function fail (reply: AadErrorReply): ClientAuthenticationResult {
  return { ok: false, reply }
}
