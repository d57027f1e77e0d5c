import { X509Certificate } from 'node:crypto'
import { AuthError, ConfidentialClientApplication, type Configuration } from '@azure/msal-node'

/**
 * Bearer tokens for the Dataverse Web API, from Azure AD (Entra ID) by the client-credentials grant,
 * through MSAL Node. MSAL keeps the token in its in-memory cache and reuses it until five minutes
 * before expiry (reference doc §8.4), so calling `getAccessToken()` before every Dataverse request
 * costs one token request per hour, not one per call.
 */

export type AzureAdCredential =
  | { readonly kind: 'secret', readonly clientSecret: string }
  | { readonly kind: 'certificate', readonly privateKeyPem: string, readonly certificatePem: string }

export interface MsalAccessTokenProviderOptions {
  /** `https://login.microsoftonline.com`, a sovereign cloud host, or any https host serving OpenID discovery (the sandbox). */
  readonly authorityHost: string
  readonly tenantId: string
  readonly clientId: string
  readonly credential: AzureAdCredential
  /** The Dataverse environment URL, e.g. `https://contoso.crm.dynamics.com`. */
  readonly resourceUrl: string
  /** Longest wait for Azure AD to issue a token (default `AZURE_AD_TOKEN_TIMEOUT_MS`). */
  readonly timeoutMs?: number
}

/**
 * MSAL Node's token POST has no timeout of its own (msal-node `HttpClient`: a timeout is applied to
 * GETs only when one is passed, never to the token request), so a token endpoint that accepts the
 * connection and never answers would hold every Dataverse call of the process. Azure AD answers in
 * well under a second; ten seconds leaves room for a slow network and still lets the job's own
 * retry, with backoff, take over.
 */
export const AZURE_AD_TOKEN_TIMEOUT_MS = 10_000

export interface AccessTokenProvider {
  getAccessToken (): Promise<string>
}

export class AzureAdAuthError extends Error {
  readonly code = 'AZURE_AD_AUTH_FAILED'
  /** MSAL's `errorCode`: the AAD `error` for server replies (`invalid_client`, …) or MSAL's own code. */
  readonly msalErrorCode: string
  /** HTTP status of the token endpoint's reply, when there was one. */
  readonly status: number | undefined
  constructor (message: string, details: { msalErrorCode: string, status?: number, cause?: unknown }) {
    super(message, { cause: details.cause })
    this.name = 'AzureAdAuthError'
    this.msalErrorCode = details.msalErrorCode
    this.status = details.status
  }
}

/**
 * Azure AD did not issue a token in time. Transient: nothing was sent to Dataverse, and the next
 * try (the job's retry) asks again.
 */
export class AzureAdTimeoutError extends Error {
  readonly code = 'AZURE_AD_TIMEOUT'
  readonly retryable = true
  constructor (readonly timeoutMs: number) {
    super(`Azure AD issued no token within ${timeoutMs} ms`)
    this.name = 'AzureAdTimeoutError'
  }
}

/**
 * Hosts MSAL already has cloud-discovery and endpoint metadata for (msal-common
 * `src/authority/AuthorityMetadata.ts`). Any other host must be listed in `knownAuthorities`, or MSAL
 * asks login.microsoftonline.com to vouch for it (instance discovery, §8.2), which a private
 * authority (the sandbox, ADFS-like proxies) cannot pass.
 */
const MICROSOFT_AUTHORITY_HOSTS = new Set([
  'login.microsoftonline.com',
  'login.microsoft.com',
  'login.windows.net',
  'sts.windows.net',
  'login.microsoftonline.de',
  'login.chinacloudapi.cn',
  'login.partner.microsoftonline.cn',
  'login.microsoftonline.us',
  'login-us.microsoftonline.com',
  'login.usgovcloudapi.net',
  'login.sovcloud-identity.fr',
  'login.sovcloud-identity.de',
  'login.sovcloud-identity.sg'
])

export function createMsalAccessTokenProvider (options: MsalAccessTokenProviderOptions): AccessTokenProvider {
  const application = new ConfidentialClientApplication(msalConfiguration(options))
  const scopes = [`${options.resourceUrl.replace(/\/+$/, '')}/.default`]
  const secret = options.credential.kind === 'secret' ? options.credential.clientSecret : undefined

  const timeoutMs = options.timeoutMs ?? AZURE_AD_TOKEN_TIMEOUT_MS

  const acquire = async (): Promise<{ token: string, renewAt: number }> => {
    let result
    let timer: NodeJS.Timeout | undefined
    try {
      // MSAL takes no abort signal: the request it has made is left to finish or fail on its own,
      // but nobody waits for it past the timeout, and the next caller starts a fresh one.
      result = await Promise.race([
        application.acquireTokenByClientCredential({ scopes }),
        new Promise<never>((_resolve, reject) => {
          timer = setTimeout(() => reject(new AzureAdTimeoutError(timeoutMs)), timeoutMs)
          timer.unref()
        })
      ])
    } catch (error) {
      if (error instanceof AzureAdTimeoutError) throw error
      throw toAzureAdAuthError(error, secret)
    } finally {
      clearTimeout(timer)
    }
    if (result === null || result.accessToken === '') {
      throw new AzureAdAuthError('Azure AD returned no access token', { msalErrorCode: 'empty_token' })
    }
    // Renew when MSAL would (five minutes before expiry, reference §8.4); until then skip MSAL's
    // cache look-up, which profiling showed to be a tenth of a worker's CPU at one call per request.
    const expiresAt = result.expiresOn?.getTime() ?? Date.now()
    return { token: result.accessToken, renewAt: expiresAt - MSAL_RENEWAL_OFFSET_MS }
  }

  let current: { token: string, renewAt: number } | undefined
  let pending: Promise<{ token: string, renewAt: number }> | undefined
  return {
    async getAccessToken () {
      if (current !== undefined && Date.now() < current.renewAt) return current.token
      pending ??= acquire().finally(() => { pending = undefined })
      current = await pending
      return current.token
    }
  }
}

const MSAL_RENEWAL_OFFSET_MS = 300_000

function msalConfiguration (options: MsalAccessTokenProviderOptions): Configuration {
  const authorityUrl = new URL(options.authorityHost)
  const authority = `${authorityUrl.origin}/${options.tenantId}`
  // MSAL compares knownAuthorities entries with the authority's host *including the port*
  // (Authority.isInKnownAuthorities uses HostNameAndPort), so `localhost:8443`, not `localhost`.
  const knownAuthorities = MICROSOFT_AUTHORITY_HOSTS.has(authorityUrl.hostname.toLowerCase()) ? [] : [authorityUrl.host]
  const credential = options.credential
  return {
    auth: {
      clientId: options.clientId,
      authority,
      knownAuthorities,
      ...(credential.kind === 'secret'
        ? { clientSecret: credential.clientSecret }
        : {
            clientCertificate: {
              thumbprintSha256: certificateThumbprintSha256(credential.certificatePem),
              privateKey: credential.privateKeyPem,
              // Sending the chain (x5c) enables subject-name/issuer authentication (certificate rollover without re-registration).
              x5c: credential.certificatePem
            }
          })
    }
  }
}

/** Hex SHA-256 of the DER certificate, the form MSAL's `thumbprintSha256` wants. */
function certificateThumbprintSha256 (certificatePem: string): string {
  return new X509Certificate(certificatePem).fingerprint256.replaceAll(':', '').toLowerCase()
}

function toAzureAdAuthError (error: unknown, secret: string | undefined): AzureAdAuthError {
  const scrub = (text: string): string => (secret !== undefined && secret !== '' ? text.split(secret).join('[Redacted]') : text)
  if (error instanceof AuthError) {
    const status = (error as AuthError & { status?: unknown }).status
    return new AzureAdAuthError(scrub(`Azure AD token request failed (${error.errorCode}): ${error.errorMessage}`), {
      msalErrorCode: error.errorCode,
      // MSAL's errors carry AAD's reply (codes, correlation id), never the request body.
      cause: error,
      ...(typeof status === 'number' ? { status } : {})
    })
  }
  const message = error instanceof Error ? error.message : String(error)
  return new AzureAdAuthError(scrub(`Azure AD token request failed: ${message}`), { msalErrorCode: 'unknown_error' })
}
