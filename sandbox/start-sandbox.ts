import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { ensureSandboxTls, type SandboxTls } from './tls.ts'
import { startAzureAdEmulator, type AzureAdEmulator } from './azure-ad/index.ts'
import { startDataverseEmulator, type DataverseEmulator } from './dataverse/index.ts'
import { startMarketoEmulator, type MarketoEmulator } from './marketo/index.ts'
import { freePort, startLocalRedis, type LocalRedis } from './redis-server.ts'

/**
 * The whole outside world on loopback: Redis (unless one is given), an Azure AD authority over
 * HTTPS (MSAL insists on https; the sandbox CA is trusted through NODE_EXTRA_CA_CERTS), a Dataverse
 * Web API and a Marketo instance, seeded with a few users, leads and persons. `env` is the
 * environment the API and workers run with against it — the same variables as production.
 * Used by `npm run sandbox`, the integration tests and the benchmarks.
 */

/** Well-known sandbox credentials: they open nothing but these emulators. */
export const SANDBOX_CREDENTIALS = {
  ssfsApiKey: 'sandbox-ssfs-api-key-0001',
  marketoClientId: 'sandbox-marketo-client',
  marketoClientSecret: 'sandbox-marketo-secret',
  tenantId: '7d3c0ffe-5a1d-4b7a-9a55-5a4db0c0ffee',
  azureClientId: '0c1e4d15-2b1a-4f8e-9d43-5a4db0c11e47',
  azureClientSecret: 'sandbox-azure-secret',
  munchkinId: '123-ABC-456'
} as const

export const SANDBOX_USERS = {
  alex: { systemuserid: '5f1c2a10-0000-4000-8000-00000000a1e7', fullname: 'Alex Admin', firstname: 'Alex', lastname: 'Admin' },
  dana: { systemuserid: '5f1c2a10-0000-4000-8000-00000000da7a', fullname: 'Dana Seller', firstname: 'Dana', lastname: 'Seller' },
  sam: { systemuserid: '5f1c2a10-0000-4000-8000-0000000005a3', fullname: 'Sam Support', firstname: 'Sam', lastname: 'Support' }
} as const

export interface SandboxOptions {
  /** Use this Redis instead of starting one. */
  readonly redisUrl?: string
  /** Start the local redis-server in its own process group (see `LocalRedisOptions`). */
  readonly redisOwnProcessGroup?: boolean
  /** Run the local redis-server with the persistence docker-compose.yml ships, its files here. */
  readonly redisAppendOnlyDir?: string
  /** Port the API will listen on (PUBLIC_URL points there); free one by default. */
  readonly apiPort?: number
  /** Where the emulators listen (the launcher's stable, documented URLs); omitted or 0: the OS chooses. */
  readonly ports?: { readonly marketo?: number, readonly dataverse?: number, readonly azureAd?: number }
  /** Dataverse columns the emulated org requires on create (an org's own rules). */
  readonly requiredFields?: { readonly leads?: readonly string[], readonly contacts?: readonly string[] }
  readonly dataverseLatencyMs?: number
  readonly tlsDir?: string
  /** Extra/overriding environment for the service (e.g. CALLBACK_BACKOFF_MS in tests). */
  readonly env?: Readonly<Record<string, string>>
}

export interface Sandbox {
  readonly tls: SandboxTls
  readonly redis: { readonly url: string, readonly local?: LocalRedis }
  readonly azureAd: AzureAdEmulator
  readonly dataverse: DataverseEmulator
  readonly marketo: MarketoEmulator
  readonly apiPort: number
  readonly publicUrl: string
  /** The service's environment (plus NODE_EXTRA_CA_CERTS for child processes). */
  readonly env: Readonly<Record<string, string>>
  close (): Promise<void>
}

export const DEFAULT_TLS_DIR = fileURLToPath(new URL('../.sandbox/tls/', import.meta.url))

export async function startSandbox (options: SandboxOptions = {}): Promise<Sandbox> {
  const started: Array<{ close (): Promise<void> }> = []
  try {
    const tls = await ensureSandboxTls(options.tlsDir ?? DEFAULT_TLS_DIR)
    const local = options.redisUrl === undefined ? await startLocalRedis({ ownProcessGroup: options.redisOwnProcessGroup, appendOnlyDir: options.redisAppendOnlyDir }) : undefined
    if (local !== undefined) started.push({ close: async () => { await local.stop() } })
    const redisUrl = options.redisUrl ?? local?.url ?? ''

    const azureAd = await startAzureAdEmulator({
      tls,
      port: options.ports?.azureAd,
      tenantId: SANDBOX_CREDENTIALS.tenantId,
      clients: [{ clientId: SANDBOX_CREDENTIALS.azureClientId, clientSecret: SANDBOX_CREDENTIALS.azureClientSecret }]
    })
    started.push(azureAd)
    const dataverse = await startDataverseEmulator({
      port: options.ports?.dataverse,
      verifyAccessToken: (token) => azureAd.verifyAccessToken(token),
      requiredFields: options.requiredFields,
      latencyMs: options.dataverseLatencyMs,
      defaultUserId: SANDBOX_USERS.alex.systemuserid,
      seed: {
        systemusers: Object.values(SANDBOX_USERS).map((user) => ({ ...user, isdisabled: false, accessmode: 0 })),
        leads: [{ firstname: 'Lena', lastname: 'Existing', emailaddress1: 'lena.existing@example.com', companyname: 'Northwind' }],
        contacts: [{ firstname: 'Carl', lastname: 'Contact', emailaddress1: 'carl.contact@example.com' }]
      }
    })
    started.push(dataverse)
    const marketo = await startMarketoEmulator({
      port: options.ports?.marketo,
      munchkinId: SANDBOX_CREDENTIALS.munchkinId,
      clients: [{ clientId: SANDBOX_CREDENTIALS.marketoClientId, clientSecret: SANDBOX_CREDENTIALS.marketoClientSecret }],
      seedPersons: [
        { email: 'nina.new@example.com', firstName: 'Nina', lastName: 'New', company: 'Contoso', title: 'CMO' },
        { email: 'omar.new@example.com', firstName: 'Omar', lastName: 'New', company: 'Fabrikam', phone: '+1 555 0100' },
        { email: 'lena.existing@example.com', firstName: 'Lena', lastName: 'Existing', company: 'Northwind' },
        { email: 'carl.contact@example.com', firstName: 'Carl', lastName: 'Contact' },
        { email: 'too.long@example.com', firstName: 'F'.repeat(60), lastName: 'Toolong', company: 'Dynamics rejects this first name (max 50)' }
      ]
    })
    started.push(marketo)

    const apiPort = options.apiPort ?? await freePort()
    const publicUrl = `http://127.0.0.1:${apiPort}`
    const env: Record<string, string> = {
      PORT: String(apiPort),
      HOST: '127.0.0.1',
      // Any free port for each process's ops server (metrics, health): the API and a worker, or
      // several workers, share this machine; each logs its `opsUrl` when it listens.
      OPS_HOST: '127.0.0.1',
      OPS_PORT: '0',
      PUBLIC_URL: publicUrl,
      REDIS_URL: redisUrl,
      SSFS_API_KEY: SANDBOX_CREDENTIALS.ssfsApiKey,
      // Generated per sandbox, unlike the well-known keys above: the admin API can discard parked
      // failures and pause the sync, so even a sandbox left running should not open to a guess.
      ADMIN_API_KEY: randomBytes(18).toString('base64url'),
      MARKETO_BASE_URL: marketo.url,
      MARKETO_CLIENT_ID: SANDBOX_CREDENTIALS.marketoClientId,
      MARKETO_CLIENT_SECRET: SANDBOX_CREDENTIALS.marketoClientSecret,
      // The emulator's callback endpoint is plain http on loopback: allowed only spelled out like this.
      MARKETO_CALLBACK_HOSTS: new URL(marketo.url).origin,
      DYNAMICS_URL: dataverse.url,
      AZURE_TENANT_ID: SANDBOX_CREDENTIALS.tenantId,
      AZURE_CLIENT_ID: SANDBOX_CREDENTIALS.azureClientId,
      AZURE_CLIENT_SECRET: SANDBOX_CREDENTIALS.azureClientSecret,
      AZURE_AUTHORITY_HOST: azureAd.authorityHost,
      NODE_EXTRA_CA_CERTS: tls.caPath,
      ...options.env
    }
    return {
      tls,
      redis: { url: redisUrl, ...(local === undefined ? {} : { local }) },
      azureAd,
      dataverse,
      marketo,
      apiPort,
      publicUrl,
      env,
      async close () {
        for (const service of started.reverse()) await service.close().catch(() => undefined)
      }
    }
  } catch (error) {
    for (const service of started.reverse()) await service.close().catch(() => undefined)
    throw error
  }
}
