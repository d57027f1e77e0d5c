import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { setTimeout as delay } from 'node:timers/promises'
import { ActivityLog } from './activity-log.ts'
import { runCampaign, type CampaignRunResult, type RunCampaignOptions } from './campaign-runner.ts'
import type { CallbackFaults } from './callback-faults.ts'
import { handleControlRequest } from './control-api.ts'
import { BulkLeadImports } from './bulk-lead-import.ts'
import { CustomActivityTypes } from './custom-activity-types.ts'
import { FlowCallbackReceiver, type CallbackRecord } from './flow-callback-receiver.ts'
import { sendJson } from './http-io.ts'
import { AccessTokenIssuer, handleIdentityRequest, type ApiClientCredentials } from './identity.ts'
import type { InstalledService } from './installed-service.ts'
import { InvocationLedger, type InvocationRecord } from './invocation-ledger.ts'
import { LeadFieldCatalog } from './lead-fields.ts'
import { PersonStore } from './person-store.ts'
import { handleRestRequest } from './rest-api.ts'
import { RestFaults } from './rest-faults.ts'
import { RestCallLimits, type RestLimitSettings } from './rest-limits.ts'
import { installService as installSsfsService, type InstallServiceOptions } from './service-installer.ts'
import { ServiceLog, type ServiceLogEntry } from './service-log.ts'

/**
 * A local Marketo: identity + REST lead/activity API (reference §2) good enough for the unmodified
 * `node-marketo-rest` client (§3), and the Self-Service Flow Step side (§1): service install, a
 * campaign runner that invokes `/submitAsyncAction`, and the callback endpoint that writes person
 * fields and activities.
 */

export interface MarketoEmulatorOptions {
  readonly host?: string
  readonly port?: number
  /** e.g. '123-ABC-456' */
  readonly munchkinId: string
  /** API-only users' client credentials the identity endpoint accepts. */
  readonly clients: readonly ApiClientCredentials[]
  /** Marketo issues 3600 s tokens (reference §2.1). */
  readonly tokenLifetimeSeconds?: number
  readonly seedPersons?: ReadonlyArray<Readonly<Record<string, unknown>>>
  /** The emulator's clock (token expiry, timestamps, `callbackFaults.failFor`). Defaults to the system clock. */
  readonly now?: () => Date
  /** Serve HTTPS with this key pair instead of HTTP (e.g. the sandbox TLS material). */
  readonly tls?: { readonly keyPem: string, readonly certPem: string }
  /** Timeout for the emulator's own calls to an SSFS service (install, invocations). */
  readonly serviceRequestTimeoutMs?: number
  /** REST call limits; unset ones are Marketo's documented 100 per 20 s, 10 at once, 50,000 a day (reference §2.4). */
  readonly limits?: Partial<RestLimitSettings>
  /** How long a bulk import job takes once started (default 20 ms). */
  readonly bulkImportTickMs?: number
}

export interface MarketoEmulator {
  /** `http://127.0.0.1:PORT` (https when `tls` was given). */
  readonly url: string
  /** `url + '/rest'`, the node-marketo-rest `endpoint`. */
  readonly restUrl: string
  /** `url + '/identity'`, the node-marketo-rest `identity`. */
  readonly identityUrl: string
  /** `url + '/customflowaction/submitCustomFlowAction'`, sent as `callbackUrl` in invocations. */
  readonly callbackUrl: string
  readonly munchkinId: string
  readonly persons: PersonStore
  /** Custom activity types created over REST (drafts and approved), reference §2.7. */
  readonly customActivityTypes: CustomActivityTypes
  /** Bulk lead import jobs; `hold()` keeps started jobs Importing until `release()`. */
  readonly bulkImports: BulkLeadImports
  /** REST fault injection: `rateLimitNext(n)` (606), `errorNext(code, message, n)`, `setLatency(ms)`, `reset()`. */
  readonly faults: RestFaults
  /** The instance's call limits (606/615/607): `configure({...})`, `usage()`, `resetCounters()`. */
  readonly limits: RestCallLimits
  /** Callback endpoint fault injection: `failNext(n, status = 503)`, `failFor(ms, status = 503)`, `reset()`. */
  readonly callbackFaults: CallbackFaults
  /** Every callback attempt (refused ones too), in arrival order. */
  readonly callbacks: readonly CallbackRecord[]
  identityRequestCount: () => number
  /** REST calls received (identity and `/_emulator` excluded; failed calls included). */
  restCallCount: () => number
  /** Every issued token answers 602 from now on; the next identity call issues a fresh one. */
  expireTokens: () => void
  installService: (options: InstallServiceOptions) => Promise<InstalledService>
  /** The most recently installed service (what `/_emulator/campaigns/run` uses). */
  installedService: () => InstalledService | undefined
  runCampaign: (service: InstalledService, options: RunCampaignOptions) => Promise<CampaignRunResult>
  /** Resolves when a callback for that invocation token has been accepted (202); rejects on timeout or close. */
  waitForCallback: (token: string, options: { timeoutMs: number }) => Promise<CallbackRecord>
  callbackAttemptCount: (token?: string) => number
  invocations: () => InvocationRecord[]
  serviceLog: () => ServiceLogEntry[]
  close: () => Promise<void>
}

const DEFAULT_TOKEN_LIFETIME_SECONDS = 3600
const DEFAULT_SERVICE_REQUEST_TIMEOUT_MS = 30_000
const FIRST_CAMPAIGN_ID = 1001

export async function startMarketoEmulator (options: MarketoEmulatorOptions): Promise<MarketoEmulator> {
  const now = options.now ?? (() => new Date())
  const fields = new LeadFieldCatalog()
  const activities = new ActivityLog()
  const persons = new PersonStore({ fields, activities, now })
  for (const seed of options.seedPersons ?? []) persons.create(seed)
  const issuer = new AccessTokenIssuer({ clients: options.clients, tokenLifetimeSeconds: options.tokenLifetimeSeconds ?? DEFAULT_TOKEN_LIFETIME_SECONDS, now })
  const faults = new RestFaults()
  const limits = new RestCallLimits({ now, ...(options.limits === undefined ? {} : { settings: options.limits }) })
  const ledger = new InvocationLedger()
  const serviceLog = new ServiceLog()
  const receiver = new FlowCallbackReceiver({ ledger, writer: { persons, fields, activities, serviceLog, now } })
  const serviceRequestTimeoutMs = options.serviceRequestTimeoutMs ?? DEFAULT_SERVICE_REQUEST_TIMEOUT_MS
  const customActivityTypes = new CustomActivityTypes({ activities, now })
  const bulkImports = new BulkLeadImports({ persons, fields }, options.bulkImportTickMs === undefined ? {} : { tickMs: options.bulkImportTickMs })
  const restDeps = { issuer, persons, fields, activities, customActivityTypes, bulkImports, faults, limits, now }
  let identityRequests = 0
  let restCalls = 0
  let nextCampaignId = FIRST_CAMPAIGN_ID
  let lastInstalled: InstalledService | undefined

  // Filled in once the server listens and the port is known.
  let url = ''
  let callbackUrl = ''

  const emulator: Omit<MarketoEmulator, 'url' | 'restUrl' | 'identityUrl' | 'callbackUrl' | 'close'> = {
    munchkinId: options.munchkinId,
    persons,
    customActivityTypes,
    bulkImports,
    faults,
    limits,
    callbackFaults: receiver.faults,
    get callbacks () { return receiver.callbacks },
    identityRequestCount: () => identityRequests,
    restCallCount: () => restCalls,
    expireTokens: () => issuer.expireAll(),
    installService: async (installOptions) => {
      lastInstalled = await installSsfsService(installOptions, { fields, activities, requestTimeoutMs: serviceRequestTimeoutMs })
      return lastInstalled
    },
    installedService: () => lastInstalled,
    runCampaign: async (service, runOptions) => await runCampaign(service, runOptions, {
      persons,
      ledger,
      serviceLog,
      munchkinId: options.munchkinId,
      callbackUrl,
      requestTimeoutMs: serviceRequestTimeoutMs,
      now,
      nextCampaignId: () => nextCampaignId++
    }),
    waitForCallback: async (token, waitOptions) => await receiver.waitForCallback(token, waitOptions),
    callbackAttemptCount: (token) => receiver.attemptCount(token),
    invocations: () => ledger.list(),
    serviceLog: () => serviceLog.entries()
  }

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const requestUrl = new URL(req.url ?? '/', 'http://emulator.invalid')
    const path = requestUrl.pathname
    if (path.startsWith('/identity/')) {
      identityRequests++
      // The emulated latency reaches the identity endpoint too: a token request is an HTTP call to
      // the instance like any other (reference §2.1), and a client that re-authenticates pays it.
      if (faults.latencyMs > 0) await delay(faults.latencyMs)
      await handleIdentityRequest(req, res, requestUrl, issuer, `${options.munchkinId.toLowerCase()}.marketo-emulator`)
    } else if (path.startsWith('/rest/') || path.startsWith('/bulk/')) {
      restCalls++
      await handleRestRequest(req, res, requestUrl, restDeps)
    } else if (path === '/customflowaction/submitCustomFlowAction') {
      await receiver.handle(req, res)
    } else if (path.startsWith('/_emulator/')) {
      await handleControlRequest(req, res, requestUrl, emulator)
    } else {
      sendJson(res, 404, { error: { code: 'NOT_FOUND', message: `no route for ${path}` } })
    }
  }
  const listener = (req: IncomingMessage, res: ServerResponse): void => {
    handle(req, res).catch((error: unknown) => {
      if (res.headersSent) {
        res.destroy()
        return
      }
      sendJson(res, 500, { error: { code: 'EMULATOR_INTERNAL_ERROR', message: (error as Error).message } })
    })
  }
  const server: Server = options.tls === undefined
    ? createHttpServer(listener)
    : createHttpsServer({ key: options.tls.keyPem, cert: options.tls.certPem }, listener)

  const host = options.host ?? '127.0.0.1'
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const { port } = server.address() as AddressInfo
  url = `${options.tls === undefined ? 'http' : 'https'}://${host.includes(':') ? `[${host}]` : host}:${port}`
  callbackUrl = `${url}/customflowaction/submitCustomFlowAction`

  let closing: Promise<void> | undefined
  return Object.assign(emulator, {
    url,
    restUrl: `${url}/rest`,
    identityUrl: `${url}/identity`,
    callbackUrl,
    close: async () => {
      closing ??= new Promise<void>((resolve) => {
        receiver.close()
        bulkImports.close()
        server.close(() => resolve())
        // Keep-alive sockets (restler, fetch) would hold close() open.
        server.closeAllConnections()
      })
      await closing
    }
  })
}
