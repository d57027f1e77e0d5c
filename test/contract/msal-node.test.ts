import { randomUUID, X509Certificate } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { ClientAuthError, ConfidentialClientApplication, ServerError } from '@azure/msal-node'
import { generate } from 'selfsigned'
import { ensureSandboxTls } from '../../sandbox/tls.ts'
import { startAzureAdEmulator } from '../../sandbox/azure-ad/index.ts'
import { AzureAdAuthError, createMsalAccessTokenProvider } from '../../src/dynamics/access-token-provider.ts'

/**
 * Unmodified @azure/msal-node against the Azure AD emulator, through MSAL's own network path: it
 * fetches the OpenID configuration over HTTPS from the emulator (no authorityMetadata, no custom
 * networkClient) and trusts the sandbox CA through NODE_EXTRA_CA_CERTS (set by `npm test`).
 */

const resourceUrl = 'https://org.example.crm.dynamics.com'
const scopes = [`${resourceUrl}/.default`]
const tenantId = randomUUID()
const secretClient = { clientId: randomUUID(), clientSecret: `s3cret-${randomUUID()}` }

const tls = await ensureSandboxTls(fileURLToPath(new URL('../../.sandbox/tls/', import.meta.url)))
const clientCertificate = await generate([{ name: 'commonName', value: 'marketo-dynamics-sync test client' }], {
  keySize: 2048,
  algorithm: 'sha256'
})
const certificateClient = { clientId: randomUUID(), certificatePem: clientCertificate.cert }

const aad = await startAzureAdEmulator({
  tls: { certPem: tls.certPem, keyPem: tls.keyPem },
  tenantId,
  clients: [secretClient, certificateClient]
})
t.teardown(() => aad.close())

const authorityPort = new URL(aad.authorityHost).port

t.test('the emulator publishes an https localhost authority host with the port', async (t) => {
  t.match(aad.authorityHost, /^https:\/\/localhost:\d+$/)
  t.not(authorityPort, '')
})

t.test('client secret: a token, then the second call served from MSAL\'s cache', async (t) => {
  const before = aad.tokenRequestCount()
  const app = new ConfidentialClientApplication({
    auth: {
      clientId: secretClient.clientId,
      clientSecret: secretClient.clientSecret,
      authority: `${aad.authorityHost}/${tenantId}`,
      // host:port — MSAL matches knownAuthorities against the authority's HostNameAndPort.
      knownAuthorities: [`localhost:${authorityPort}`]
    }
  })
  const first = await app.acquireTokenByClientCredential({ scopes })
  t.ok(first, 'MSAL returned a result')
  t.equal(first?.fromCache, false)
  t.equal(first?.tokenType, 'Bearer')
  t.ok(aad.verifyAccessToken(first?.accessToken ?? '', { audience: resourceUrl }), 'token signed by the emulator for the resource')
  t.notOk(aad.verifyAccessToken(first?.accessToken ?? '', { audience: 'https://other.example' }), 'audience is checked')
  t.ok((first?.expiresOn?.getTime() ?? 0) > Date.now() + 50 * 60_000, 'expires in about an hour')

  const second = await app.acquireTokenByClientCredential({ scopes })
  t.equal(second?.fromCache, true)
  t.equal(second?.accessToken, first?.accessToken)
  t.equal(aad.tokenRequestCount() - before, 1, 'one token request for two calls')
})

t.test('knownAuthorities given as an https URL with the port also works', async (t) => {
  const app = new ConfidentialClientApplication({
    auth: {
      clientId: secretClient.clientId,
      clientSecret: secretClient.clientSecret,
      authority: `${aad.authorityHost}/${tenantId}`,
      knownAuthorities: [aad.authorityHost]
    }
  })
  const result = await app.acquireTokenByClientCredential({ scopes })
  t.ok(aad.verifyAccessToken(result?.accessToken ?? ''))
})

t.test('wrong secret: ServerError invalid_client with status 401', async (t) => {
  const app = new ConfidentialClientApplication({
    auth: {
      clientId: secretClient.clientId,
      clientSecret: 'not-the-secret',
      authority: `${aad.authorityHost}/${tenantId}`,
      knownAuthorities: [`localhost:${authorityPort}`]
    }
  })
  const error = await app.acquireTokenByClientCredential({ scopes }).then(() => undefined, (e: unknown) => e)
  t.ok(error instanceof ServerError, 'a ServerError')
  t.equal((error as ServerError).errorCode, 'invalid_client')
  t.equal((error as ServerError).status, 401)
  t.match((error as ServerError).errorMessage, /AADSTS7000215/)
})

t.test('unknown tenant: MSAL fails on the OpenID configuration fetch', async (t) => {
  const app = new ConfidentialClientApplication({
    auth: {
      clientId: secretClient.clientId,
      clientSecret: secretClient.clientSecret,
      authority: `${aad.authorityHost}/${randomUUID()}`,
      knownAuthorities: [`localhost:${authorityPort}`]
    }
  })
  const error = await app.acquireTokenByClientCredential({ scopes }).then(() => undefined, (e: unknown) => e)
  // MSAL reports a failed OpenID discovery as a client-side endpoint resolution failure.
  t.ok(error instanceof ClientAuthError)
  t.equal((error as ClientAuthError).errorCode, 'endpoints_resolution_error')
})

t.test('client certificate: MSAL signs a PS256 client assertion that the emulator verifies', async (t) => {
  const before = aad.tokenRequestCount()
  const thumbprintSha256 = new X509Certificate(clientCertificate.cert).fingerprint256.replaceAll(':', '')
  const app = new ConfidentialClientApplication({
    auth: {
      clientId: certificateClient.clientId,
      authority: `${aad.authorityHost}/${tenantId}`,
      knownAuthorities: [`localhost:${authorityPort}`],
      clientCertificate: { thumbprintSha256, privateKey: clientCertificate.private, x5c: clientCertificate.cert }
    }
  })
  const result = await app.acquireTokenByClientCredential({ scopes })
  t.ok(aad.verifyAccessToken(result?.accessToken ?? '', { audience: resourceUrl }))
  t.equal(aad.tokenRequestCount() - before, 1)
})

t.test('client certificate signed by a different key is refused', async (t) => {
  const impostor = await generate([{ name: 'commonName', value: 'impostor' }], { keySize: 2048, algorithm: 'sha256' })
  // The impostor claims the registered certificate's thumbprint but signs with its own key.
  const thumbprintSha256 = new X509Certificate(clientCertificate.cert).fingerprint256.replaceAll(':', '')
  const app = new ConfidentialClientApplication({
    auth: {
      clientId: certificateClient.clientId,
      authority: `${aad.authorityHost}/${tenantId}`,
      knownAuthorities: [`localhost:${authorityPort}`],
      clientCertificate: { thumbprintSha256, privateKey: impostor.private }
    }
  })
  const error = await app.acquireTokenByClientCredential({ scopes }).then(() => undefined, (e: unknown) => e)
  t.ok(error instanceof ServerError)
  t.equal((error as ServerError).errorCode, 'invalid_client')
  t.match((error as ServerError).errorMessage, /AADSTS700027/)
})

t.test('createMsalAccessTokenProvider with a client secret caches the token', async (t) => {
  const before = aad.tokenRequestCount()
  const provider = createMsalAccessTokenProvider({
    authorityHost: aad.authorityHost,
    tenantId,
    clientId: secretClient.clientId,
    credential: { kind: 'secret', clientSecret: secretClient.clientSecret },
    resourceUrl
  })
  const tokens = await Promise.all([provider.getAccessToken(), provider.getAccessToken()])
  const third = await provider.getAccessToken()
  t.ok(aad.verifyAccessToken(third, { audience: resourceUrl }))
  t.equal(tokens[0], third)
  t.ok(aad.tokenRequestCount() - before <= 2, 'concurrent first calls may race, later ones hit the cache')
  const settled = aad.tokenRequestCount()
  await provider.getAccessToken()
  t.equal(aad.tokenRequestCount(), settled, 'no new request once cached')
})

t.test('createMsalAccessTokenProvider with a certificate', async (t) => {
  const provider = createMsalAccessTokenProvider({
    authorityHost: `${aad.authorityHost}/`,
    tenantId,
    clientId: certificateClient.clientId,
    credential: { kind: 'certificate', privateKeyPem: clientCertificate.private, certificatePem: clientCertificate.cert },
    resourceUrl: `${resourceUrl}/`
  })
  const token = await provider.getAccessToken()
  t.ok(aad.verifyAccessToken(token, { audience: resourceUrl }))
})

t.test('createMsalAccessTokenProvider wraps a refusal in AzureAdAuthError without the secret', async (t) => {
  const wrongSecret = `wrong-${randomUUID()}`
  const provider = createMsalAccessTokenProvider({
    authorityHost: aad.authorityHost,
    tenantId,
    clientId: secretClient.clientId,
    credential: { kind: 'secret', clientSecret: wrongSecret },
    resourceUrl
  })
  const error = await provider.getAccessToken().then(() => undefined, (e: unknown) => e)
  t.ok(error instanceof AzureAdAuthError)
  const authError = error as AzureAdAuthError
  t.equal(authError.code, 'AZURE_AD_AUTH_FAILED')
  t.equal(authError.msalErrorCode, 'invalid_client')
  t.equal(authError.status, 401)
  t.notMatch(authError.message, wrongSecret)
  t.notMatch(JSON.stringify(authError), wrongSecret)
})

t.test('the token endpoint answers errors in AAD\'s JSON shape', async (t) => {
  const post = async (tenant: string, form: Record<string, string>): Promise<{ status: number, body: Record<string, unknown> }> => {
    const response = await fetch(`${aad.authorityHost}/${tenant}/oauth2/v2.0/token`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(form)
    })
    return { status: response.status, body: await response.json() as Record<string, unknown> }
  }
  const credentials = { client_id: secretClient.clientId, client_secret: secretClient.clientSecret, scope: scopes[0] ?? '' }

  const unsupported = await post(tenantId, { ...credentials, grant_type: 'password' })
  t.equal(unsupported.status, 400)
  t.equal(unsupported.body.error, 'unsupported_grant_type')
  t.match(unsupported.body, { error_description: /^AADSTS\d+: /, error_codes: [Number], timestamp: String, trace_id: String, correlation_id: String })

  const unknownTenant = await post(randomUUID(), { ...credentials, grant_type: 'client_credentials' })
  t.equal(unknownTenant.status, 400)
  t.match(unknownTenant.body.error_description, /AADSTS90002/)

  const badScope = await post(tenantId, { ...credentials, scope: 'user.read', grant_type: 'client_credentials' })
  t.equal(badScope.status, 400)
  t.equal(badScope.body.error, 'invalid_scope')

  const discovery = await (await fetch(`${aad.authorityHost}/${tenantId}/v2.0/.well-known/openid-configuration`)).json() as Record<string, unknown>
  t.equal(discovery.issuer, `${aad.authorityHost}/${tenantId}/v2.0`, 'issuer on the authority\'s own scheme, host and port (MSAL issuer rule 1)')
  t.equal(discovery.token_endpoint, `${aad.authorityHost}/${tenantId}/oauth2/v2.0/token`)
})
