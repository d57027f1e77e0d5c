import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { setTimeout as delay } from 'node:timers/promises'
import { createServer, type Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { aadError, type AadErrorReply } from './aad-error.ts'
import { createAccessTokenIssuer, resourceOfDefaultScope } from './access-tokens.ts'
import { authenticateClient, createClientRegistry, type RegisteredClient } from './client-authentication.ts'
import { AzureAdFaultInjector, AzureAdFaultSettingsError, type AzureAdFaults } from './faults.ts'

/**
 * A local Azure AD (Entra ID) v2.0 endpoint for the client-credentials grant, served over HTTPS so
 * that unmodified MSAL Node can use it as its authority: MSAL only accepts `https:` authorities and,
 * for a host it does not know, fetches `/{tenant}/v2.0/.well-known/openid-configuration` from it and
 * checks that the document's `issuer` has the authority's scheme + host + port (reference doc §8.2;
 * msal-common `Authority.validateIssuer`, rule 1).
 *
 * MSAL configuration proven by test/contract/msal-node.test.ts:
 *   authority: `${authorityHost}/${tenantId}`, knownAuthorities: [new URL(authorityHost).host]  (i.e. 'localhost:PORT')
 */

export interface AzureAdEmulatorOptions {
  readonly tls: { readonly certPem: string, readonly keyPem: string }
  /** Interface to listen on; default 127.0.0.1. */
  readonly host?: string
  /** 0 (default) lets the OS choose. */
  readonly port?: number
  readonly tenantId: string
  readonly clients: readonly RegisteredClient[]
  /** AAD's usual value is 3599; MSAL reuses a cached token until 300 s before expiry (§8.4). */
  readonly tokenLifetimeSeconds?: number
}

export interface AzureAdEmulator {
  /** `https://localhost:PORT`: what AZURE_AUTHORITY_HOST should hold. */
  readonly authorityHost: string
  readonly tenantId: string
  /** POSTs received by the token endpoint, successful or not. */
  tokenRequestCount (): number
  /** Also over HTTP: `GET|PUT|DELETE /_emulator/faults` (PUT `{"delayTokens":{"count":1,"ms":60000}}`). */
  readonly faults: AzureAdFaults
  verifyAccessToken (token: string, expectation?: { audience?: string }): boolean
  close (): Promise<void>
}

const MAX_FORM_BYTES = 64 * 1024

export async function startAzureAdEmulator (options: AzureAdEmulatorOptions): Promise<AzureAdEmulator> {
  const listenHost = options.host ?? '127.0.0.1'
  const tenantId = options.tenantId
  const registry = createClientRegistry(options.clients)
  const tokens = createAccessTokenIssuer({ tenantId, lifetimeSeconds: options.tokenLifetimeSeconds ?? 3599 })
  let tokenRequests = 0
  let authorityHost = ''
  const faults = new AzureAdFaultInjector()
  // Ends the delays of held token requests when the emulator closes, so no timer outlives it.
  const closed = new AbortController()

  const server: Server = createServer({ cert: options.tls.certPem, key: options.tls.keyPem }, (request, response) => {
    handle(request, response).catch((error: unknown) => {
      if (!response.headersSent) {
        sendJson(response, 500, { error: 'server_error', error_description: `emulator failure: ${(error as Error).message}` })
      } else {
        response.destroy()
      }
    })
  })

  function tenantUrls (tenant: string): { issuer: string, tokenEndpoint: string, v1TokenEndpoint: string } {
    return {
      issuer: `${authorityHost}/${tenant}/v2.0`,
      tokenEndpoint: `${authorityHost}/${tenant}/oauth2/v2.0/token`,
      v1TokenEndpoint: `${authorityHost}/${tenant}/oauth2/token`
    }
  }

  function openIdConfiguration (tenant: string): Record<string, unknown> {
    const { issuer, tokenEndpoint } = tenantUrls(tenant)
    return {
      token_endpoint: tokenEndpoint,
      token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
      jwks_uri: `${authorityHost}/${tenant}/discovery/v2.0/keys`,
      response_modes_supported: ['query', 'fragment', 'form_post'],
      subject_types_supported: ['pairwise'],
      id_token_signing_alg_values_supported: ['RS256'],
      response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
      scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
      issuer,
      request_uri_parameter_supported: false,
      userinfo_endpoint: `${authorityHost}/oidc/userinfo`,
      authorization_endpoint: `${authorityHost}/${tenant}/oauth2/v2.0/authorize`,
      device_authorization_endpoint: `${authorityHost}/${tenant}/oauth2/v2.0/devicecode`,
      http_logout_supported: true,
      frontchannel_logout_supported: true,
      end_session_endpoint: `${authorityHost}/${tenant}/oauth2/v2.0/logout`,
      claims_supported: ['sub', 'iss', 'aud', 'exp', 'iat', 'auth_time', 'acr', 'nonce', 'tid', 'ver', 'oid'],
      tenant_region_scope: 'EU',
      cloud_instance_name: 'sandbox.local',
      cloud_graph_host_name: 'graph.sandbox.local',
      msgraph_host: 'graph.sandbox.local'
    }
  }

  async function handle (request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', authorityHost)
    const segments = url.pathname.split('/').filter((segment) => segment !== '').map(decodeURIComponent)
    const correlationId = request.headers['client-request-id']?.toString() ?? url.searchParams.get('client-request-id') ?? randomUUID()

    if (request.method === 'GET' && segments.length === 3 && segments[0] === 'common' && segments[1] === 'discovery' && segments[2] === 'instance') {
      // Instance discovery (§8.2 step 1). MSAL asks login.microsoftonline.com for it unless the host is
      // in knownAuthorities, so this only serves clients pointed here explicitly.
      const host = new URL(authorityHost).host
      sendJson(response, 200, {
        tenant_discovery_endpoint: `${authorityHost}/{tenant}/v2.0/.well-known/openid-configuration`,
        'api-version': '1.1',
        metadata: [{ preferred_network: host, preferred_cache: host, aliases: [host] }]
      })
      return
    }

    if (segments[0] === '_emulator') {
      await handleControl(request, response, segments.slice(1).join('/'))
      return
    }

    const tenant = segments[0]
    const rest = segments.slice(1).join('/')
    const isOpenIdConfiguration = request.method === 'GET' &&
      (rest === 'v2.0/.well-known/openid-configuration' || rest === '.well-known/openid-configuration')
    const isKeys = request.method === 'GET' && rest === 'discovery/v2.0/keys'
    const isToken = rest === 'oauth2/v2.0/token'

    if (tenant === undefined || (!isOpenIdConfiguration && !isKeys && !isToken)) {
      sendJson(response, 404, { error: 'not_found', error_description: `no emulated endpoint at ${request.method ?? 'GET'} ${url.pathname}` })
      return
    }
    if (isToken) {
      tokenRequests += 1
      if (request.method !== 'POST') {
        sendAadError(response, aadError(405, 'invalid_request', 900561,
          'The endpoint only accepts POST requests.', correlationId))
        return
      }
    }
    if (tenant !== tenantId) {
      sendAadError(response, aadError(400, isOpenIdConfiguration ? 'invalid_tenant' : 'invalid_request', 90002,
        `Tenant '${tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.`,
        correlationId))
      return
    }
    if (isOpenIdConfiguration) {
      sendJson(response, 200, openIdConfiguration(tenant))
      return
    }
    if (isKeys) {
      sendJson(response, 200, { keys: [] })
      return
    }
    await handleTokenRequest(request, response, tenant, correlationId)
  }

  async function handleControl (request: IncomingMessage, response: ServerResponse, route: string): Promise<void> {
    const method = request.method ?? 'GET'
    if (route === 'faults' && method === 'GET') {
      sendJson(response, 200, faults.state())
      return
    }
    if (route === 'faults' && method === 'PUT') {
      const raw = await readBody(request) ?? ''
      try {
        faults.apply(JSON.parse(raw === '' ? '{}' : raw))
      } catch (error) {
        if (error instanceof AzureAdFaultSettingsError || error instanceof SyntaxError) {
          sendJson(response, 400, { error: 'invalid_fault_settings', error_description: error.message })
          return
        }
        throw error
      }
      sendJson(response, 200, faults.state())
      return
    }
    if (route === 'faults' && method === 'DELETE') {
      faults.clear()
      response.writeHead(204).end()
      return
    }
    sendJson(response, 404, { error: 'not_found', error_description: `no emulator control at ${method} /_emulator/${route}` })
  }

  async function handleTokenRequest (request: IncomingMessage, response: ServerResponse, tenant: string, correlationId: string): Promise<void> {
    const holdMs = faults.takeTokenDelay()
    if (holdMs > 0) {
      try {
        await delay(holdMs, undefined, { signal: closed.signal })
      } catch {
        return // closing: the connection is being destroyed
      }
    }
    const body = await readBody(request)
    if (body === undefined) {
      sendAadError(response, aadError(413, 'invalid_request', 90023, 'The request body is too large.', correlationId))
      return
    }
    const contentType = request.headers['content-type'] ?? ''
    if (!contentType.toLowerCase().startsWith('application/x-www-form-urlencoded')) {
      sendAadError(response, aadError(400, 'invalid_request', 900144,
        "The request body must contain the following parameter: 'grant_type'.", correlationId))
      return
    }
    const form = new URLSearchParams(body)
    const grantType = form.get('grant_type')
    if (grantType === null) {
      sendAadError(response, aadError(400, 'invalid_request', 900144,
        "The request body must contain the following parameter: 'grant_type'.", correlationId))
      return
    }
    if (grantType !== 'client_credentials') {
      sendAadError(response, aadError(400, 'unsupported_grant_type', 70003,
        `The app requested an unsupported grant type '${grantType}'.`, correlationId))
      return
    }
    const urls = tenantUrls(tenant)
    const authentication = authenticateClient(registry, {
      form,
      authorizationHeader: request.headers.authorization,
      tenantId: tenant,
      acceptedAssertionAudiences: [urls.tokenEndpoint, urls.v1TokenEndpoint, urls.issuer],
      correlationId
    })
    if (!authentication.ok) {
      sendAadError(response, authentication.reply)
      return
    }
    const scope = form.get('scope') ?? ''
    const resource = resourceOfDefaultScope(scope)
    if (resource === undefined) {
      sendAadError(response, aadError(400, 'invalid_scope', 1002012,
        `The provided value for scope ${scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`,
        correlationId))
      return
    }
    const issued = tokens.issue({ clientId: authentication.clientId, audience: resource })
    sendJson(response, 200, {
      token_type: 'Bearer',
      expires_in: issued.expiresIn,
      ext_expires_in: issued.expiresIn,
      access_token: issued.accessToken
    })
  }

  server.listen(options.port ?? 0, listenHost)
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  authorityHost = `https://${publicHostName(listenHost)}:${port}`

  let closing: Promise<void> | undefined
  return {
    authorityHost,
    tenantId,
    tokenRequestCount: () => tokenRequests,
    faults,
    verifyAccessToken: (token, expectation) => tokens.verify(token, expectation),
    close () {
      closing ??= new Promise<void>((resolve) => {
        closed.abort()
        server.close(() => resolve())
        server.closeAllConnections()
      })
      return closing
    }
  }
}

/**
 * The name clients should use. The sandbox certificate covers `localhost`, 127.0.0.1 and ::1; MSAL
 * wants a host name it can put in `knownAuthorities`, so loopback addresses are published as localhost.
 */
function publicHostName (listenHost: string): string {
  if (listenHost === '127.0.0.1' || listenHost === '::1' || listenHost === 'localhost' || listenHost === '0.0.0.0' || listenHost === '::') {
    return 'localhost'
  }
  return listenHost.includes(':') ? `[${listenHost}]` : listenHost
}

async function readBody (request: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of request) {
    const buffer = chunk as Buffer
    size += buffer.length
    if (size > MAX_FORM_BYTES) return undefined
    chunks.push(buffer)
  }
  return Buffer.concat(chunks).toString('utf8')
}

function sendAadError (response: ServerResponse, reply: AadErrorReply): void {
  sendJson(response, reply.status, reply.body)
}

function sendJson (response: ServerResponse, status: number, body: unknown): void {
  const payload = JSON.stringify(body)
  response.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(payload),
    'Cache-Control': 'no-store, no-cache',
    Pragma: 'no-cache'
  })
  response.end(payload)
}
