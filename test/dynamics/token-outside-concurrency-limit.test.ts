import t from 'tap'
import { randomUUID } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { setTimeout as delay } from 'node:timers/promises'
import pino from 'pino'
import { ensureSandboxTls } from '../../sandbox/tls.ts'
import { startAzureAdEmulator } from '../../sandbox/azure-ad/index.ts'
import { startDataverseEmulator } from '../../sandbox/dataverse/index.ts'
import { AzureAdTimeoutError, createMsalAccessTokenProvider } from '../../src/dynamics/access-token-provider.ts'
import { DataverseClient } from '../../src/dynamics/dataverse-client.ts'

/**
 * Issue 11 §3.7: a token from Azure AD is awaited with a timeout, and not inside a Dataverse
 * concurrency slot. Real MSAL over HTTPS against the Azure AD emulator made to hang, and the
 * Dataverse emulator over HTTP.
 */

const tenantId = randomUUID()
const registered = { clientId: randomUUID(), clientSecret: `s3cret-${randomUUID()}` }
const tls = await ensureSandboxTls(fileURLToPath(new URL('../../.sandbox/tls/', import.meta.url)))
const aad = await startAzureAdEmulator({ tls: { certPem: tls.certPem, keyPem: tls.keyPem }, tenantId, clients: [registered] })
const dataverse = await startDataverseEmulator({})
t.teardown(async () => {
  await aad.close()
  await dataverse.close()
})
t.afterEach(() => { aad.faults.clear() })

const provider = (timeoutMs: number) => createMsalAccessTokenProvider({
  authorityHost: aad.authorityHost,
  tenantId,
  clientId: registered.clientId,
  credential: { kind: 'secret', clientSecret: registered.clientSecret },
  resourceUrl: dataverse.url,
  timeoutMs
})

/** Polls a condition with a deadline. */
async function eventually (condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await delay(10)
  }
}

t.test('a hung token endpoint gives a timely AzureAdTimeoutError, a retryable one', async (t) => {
  aad.faults.delayTokenRequests(1, 120_000)
  const started = Date.now()
  const error = await provider(500).getAccessToken().catch((e: unknown) => e)
  t.type(error, AzureAdTimeoutError)
  t.match(error, { code: 'AZURE_AD_TIMEOUT', retryable: true })
  t.ok(Date.now() - started < 5_000, `failed after ${Date.now() - started} ms, not when the endpoint answers`)
  t.ok(await provider(5_000).getAccessToken(), 'the next request is answered: the fault held only one')
})

t.test('while one request waits for a token, requests that hold one are not starved of the only slot', async (t) => {
  const ready = provider(5_000)
  await ready.getAccessToken() // cached: the requests through it already hold a token
  const hanging = provider(1_500)
  let tokenCalls = 0
  const client = new DataverseClient({
    url: dataverse.url,
    // The first request renews through an Azure AD that hangs; the rest have a token at hand.
    tokens: { getAccessToken: async () => await (tokenCalls++ === 0 ? hanging : ready).getAccessToken() },
    logger: pino({ level: 'silent' }),
    maxConcurrentRequests: 1,
    requestTimeoutMs: 5_000
  })

  aad.faults.delayTokenRequests(1, 120_000)
  const tokenRequestsBefore = aad.tokenRequestCount()
  let waitingSettled = false
  const waiting = client.retrieveMultiple('leads', { top: 1 }).catch((e: unknown) => e).finally(() => { waitingSettled = true })
  await eventually(() => aad.tokenRequestCount() > tokenRequestsBefore, 'the first request is waiting on Azure AD')

  const rows = await client.retrieveMultiple('leads', { top: 1 })
  t.ok(Array.isArray(rows), 'a request holding a token is answered')
  t.equal(waitingSettled, false, '…while the other still waits for its token')

  t.type(await waiting, AzureAdTimeoutError, 'the waiting one fails in time, typed')
})

t.test('the token fault is also set over HTTP, in the other emulators\' style', async (t) => {
  const put = await fetch(`${aad.authorityHost}/_emulator/faults`, { method: 'PUT', body: JSON.stringify({ delayTokens: { count: 2, ms: 50 } }) })
  t.equal(put.status, 200)
  t.same(await put.json(), { delayTokens: { count: 2, ms: 50 } })
  t.equal((await fetch(`${aad.authorityHost}/_emulator/faults`, { method: 'PUT', body: '{"delayTokens":{"count":-1,"ms":1}}' })).status, 400)
  t.equal((await fetch(`${aad.authorityHost}/_emulator/faults`, { method: 'DELETE' })).status, 204)
  t.same(aad.faults.state(), { delayTokens: { count: 0, ms: 0 } })
})
