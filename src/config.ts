import { hkdfSync } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { ConfigError } from './errors.ts'
import { parseCallbackHostAllowList, type CallbackHostRule } from './ssfs/callback-url-policy.ts'
import type { AzureAdCredential } from './dynamics/access-token-provider.ts'
import { DEFAULT_FIELD_MAPPING_FILE } from './sync/field-mapping-file.ts'

/**
 * The one place the environment is read. `loadConfig(process.env)` runs once at start-up (API,
 * worker, sandbox) and returns a frozen, typed object that is passed down explicitly; nothing else
 * in the code base reads `process.env`.
 */


export interface Config {
  readonly http: {
    readonly host: string
    readonly port: number
    /** Where Marketo reaches this service; becomes `servers[0]` of the SSFS OpenAPI document. */
    readonly publicUrl: string
  }
  /**
   * Every process's ops server (src/runtime/ops-server.ts): `/metrics`, `/health/live`,
   * `/health/ready`. Apart from the public port, so metrics never face Marketo.
   */
  readonly ops: {
    readonly host: string
    /** 0: any free port, logged at start (several processes on one machine, tests). */
    readonly port: number
  }
  readonly redis: {
    readonly url: string
    readonly keyPrefix: string
    /**
     * HMAC key of the digests that stand for emails in Redis key names (a plain hash of an email is
     * reversed with a list of addresses). Derived from the job sealing key under its own HKDF label,
     * so every process that can open jobs agrees on it and ops manage no extra secret.
     */
    readonly keyHashSecret: string
    /** REDIS_URL is one node of a Redis Cluster, from which the others are discovered (src/queue/connections.ts). */
    readonly cluster: boolean
  }
  readonly ssfs: {
    readonly apiKey: string
    /** Seals Marketo's callback credentials inside job data; both API and worker hold it. */
    readonly jobSealingKey: string
    readonly callbackHosts: readonly CallbackHostRule[]
    readonly providerName: string
    readonly supportContact: string
  }
  readonly marketo: {
    /** REST and identity base, e.g. https://123-ABC-456.mktorest.com */
    readonly baseUrl: string
    readonly clientId: string
    readonly clientSecret: string
    /**
     * Our share of the instance's REST limits, shared by every process through Redis
     * (src/marketo/marketo-call-budget.ts); below Marketo's own 50,000 a day, 100 per 20 s and 10
     * at once, which the customer's other integrations spend from too.
     */
    readonly callBudget: {
      readonly dailyCalls: number
      readonly callsPer20s: number
      readonly concurrentCalls: number
    }
  }
  readonly dynamics: {
    /** Environment URL, e.g. https://contoso.crm.dynamics.com */
    readonly url: string
    readonly maxConcurrentRequests: number
    /** Dataverse requests every worker process together may have in flight (src/dynamics/shared-concurrency-limit.ts). */
    readonly sharedConcurrentRequests: number
    readonly requestTimeoutMs: number
  }
  readonly azure: {
    readonly tenantId: string
    readonly clientId: string
    readonly credential: AzureAdCredential
    readonly authorityHost: string
  }
  readonly worker: {
    readonly concurrency: number
    /**
     * BullMQ job lock: how long a job stays owned by a worker that stopped renewing it (crashed,
     * killed), and how often workers look for such stalled jobs to run them again.
     */
    readonly lockDurationMs: number
    readonly stalledIntervalMs: number
  }
  /**
   * SIGTERM/SIGINT: how long a process may take to close. The API drains its requests within it; a
   * worker lets its jobs finish until the last part of it (process-lifecycle.ts), then hands the
   * ones still running back to the queue, so another worker takes them at once.
   */
  readonly shutdown: {
    readonly deadlineMs: number
  }
  /** Tries of a flow-step job while Dynamics or Marketo is unavailable; undecided persons are then reported failed. */
  readonly flowStep: {
    readonly attempts: number
    readonly backoffMs: number
    /**
     * How long an email's create claim outlives a holder that stopped renewing it (died, or left
     * it after a create of unknown outcome): the longest a retry waits before it may look again.
     */
    readonly emailClaimTtlMs: number
  }
  readonly callback: {
    readonly attempts: number
    readonly backoffMs: number
    readonly timeoutMs: number
  }
  readonly sync: {
    /**
     * The background sync's field mapping (src/sync/field-mapping.ts); read and checked against
     * Marketo's and Dataverse's schemas when the worker starts, not here.
     */
    readonly fieldMappingFile: string
    /**
     * BACKGROUND_SYNC=on: workers poll Dynamics' lead and contact changes and write them to Marketo
     * (src/background-sync/background-sync-worker-feature.ts). Off by default while the sync is
     * being built, so a deployment changes nothing until it asks.
     */
    readonly enabled: boolean
    /** How often each table's change pass runs (a BullMQ job scheduler per table). */
    readonly dynamicsPollIntervalMs: number
    /**
     * SYNC_MARKETO_POLL_INTERVAL_MS: the fastest Marketo's lead-change feed is read, the pace while
     * changes flow, and how often its job scheduler ticks. It was the fixed interval before the pace
     * adapted to the budget (issue 12 §11, src/background-sync/marketo-poll-pace.ts); it still means
     * "at most this often", no longer "always this often": at idle the feed is read at the pace half
     * the Marketo budget left can keep up until the reset (34.6 s with the default budget).
     */
    readonly marketoPollIntervalMs: number
    /**
     * `odata.maxpagesize` of a Dynamics change read (one pass's page, whose cursor is saved once it
     * is delivered). Unset: Dataverse's own 5,000 (dataverse-web-api-and-msal.md §2).
     */
    readonly dynamicsPageSize: number | undefined
    /**
     * SYNC_MARKETO_POLL_MAX_INTERVAL_MS: the slowest the pace chooses by itself, and the pace the
     * budget must still pay for until the reset before a fast poll is made. A budget that cannot pay
     * even this makes polling slower still.
     */
    readonly marketoPollMaxIntervalMs: number
    /**
     * SYNC_DELETED_RECORD_SWEEP_INTERVAL_MS: how often a table read by `modifiedon` (change tracking
     * off) has its linked records asked for by id, so a delete it cannot see still flags the person
     * (src/background-sync/deleted-record-sweep.ts). Each sweep costs one Dataverse request per 50
     * linked records of the table: 2,000 for 100,000 links.
     */
    readonly deletedRecordSweepIntervalMs: number
  }
  /**
   * The admin API and queue dashboard under `/admin` (src/admin/): ADMIN_API_KEY, sent as a bearer
   * token or as HTTP Basic's password. Unset: the admin routes are not registered at all (404), so a
   * deployment that never set a key exposes nothing to guess at.
   */
  readonly admin: {
    readonly apiKey: string | undefined
  }
  readonly logLevel: string
}

type Env = Record<string, string | undefined>

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

/** Collects every problem before failing, so ops fix a bad deployment in one round. */
class EnvReader {
  readonly problems: string[] = []
  constructor (private readonly env: Env) {}

  optional (name: string): string | undefined {
    const value = this.env[name]?.trim()
    return value === undefined || value === '' ? undefined : value
  }

  required (name: string, what: string): string {
    const value = this.optional(name)
    if (value === undefined) {
      this.problems.push(`${name} is required (${what})`)
      return ''
    }
    return value
  }

  integer (name: string, fallback: number, { min, max }: { min: number; max: number }): number {
    const raw = this.optional(name)
    if (raw === undefined) return fallback
    const value = Number(raw)
    if (!Number.isInteger(value) || value < min || value > max) {
      this.problems.push(`${name} must be an integer from ${min} to ${max}, got "${raw}"`)
      return fallback
    }
    return value
  }

  /** `httpOnlyOnLoopback`: plain http is accepted only for a host on this machine. */
  url (name: string, what: string, { fallback, protocols, httpOnlyOnLoopback = false }: { fallback?: string; protocols: string[]; httpOnlyOnLoopback?: boolean }): string {
    const raw = fallback === undefined ? this.required(name, what) : (this.optional(name) ?? fallback)
    if (raw === '') return ''
    let parsed: URL
    try {
      parsed = new URL(raw)
    } catch {
      this.problems.push(`${name} must be an absolute URL (${what}), got "${raw}"`)
      return ''
    }
    if (!protocols.includes(parsed.protocol)) {
      this.problems.push(`${name} must use ${protocols.map((p) => p.replace(':', '')).join(' or ')}, got "${parsed.protocol.replace(':', '')}"`)
    } else if (httpOnlyOnLoopback && parsed.protocol === 'http:' && !isLoopbackHost(parsed.hostname)) {
      this.problems.push(`${name} must use https (plain http only for 127.0.0.0/8, ::1 or localhost), got "${raw}"`)
    }
    return raw.replace(/\/+$/, '')
  }
}

/**
 * Hosts whose traffic never leaves the machine: the IPv4 loopback block 127.0.0.0/8 (RFC 1122
 * §3.2.1.3), IPv6 ::1 (RFC 4291 §2.5.3) and the name `localhost` (RFC 6761 §6.3). Anywhere else a
 * plain-http client would send credentials (Marketo's client secret, Dynamics bearer tokens) and
 * personal data in clear. `hostname` is as WHATWG URL gives it: IPv4 in dotted-quad form (`127.1`
 * becomes `127.0.0.1`), IPv6 bracketed, names lower-cased.
 */
function isLoopbackHost (hostname: string): boolean {
  if (hostname === 'localhost' || hostname === '[::1]') return true
  const octets = hostname.split('.')
  return octets.length === 4 && octets[0] === '127' && octets.every((octet) => /^\d{1,3}$/.test(octet))
}

function readAzureCredential (env: EnvReader): AzureAdCredential {
  const secret = env.optional('AZURE_CLIENT_SECRET')
  const certificatePath = env.optional('AZURE_CLIENT_CERTIFICATE_PATH')
  if (secret !== undefined && certificatePath !== undefined) {
    env.problems.push('set either AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH, not both')
  }
  if (certificatePath !== undefined) {
    let pem = ''
    try {
      pem = readFileSync(certificatePath, 'utf8')
    } catch (error) {
      env.problems.push(`AZURE_CLIENT_CERTIFICATE_PATH cannot be read: ${(error as NodeJS.ErrnoException).code ?? 'unknown error'}`)
    }
    const privateKeyPem = pem.match(/-----BEGIN (?:RSA |EC )?PRIVATE KEY-----[\s\S]+?-----END (?:RSA |EC )?PRIVATE KEY-----/)?.[0]
    const certificatePem = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/)?.[0]
    if (pem !== '' && (privateKeyPem === undefined || certificatePem === undefined)) {
      env.problems.push('AZURE_CLIENT_CERTIFICATE_PATH must name a PEM file holding both the private key and the certificate')
    }
    return { kind: 'certificate', privateKeyPem: privateKeyPem ?? '', certificatePem: certificatePem ?? '' }
  }
  if (secret === undefined) {
    env.problems.push('AZURE_CLIENT_SECRET (or AZURE_CLIENT_CERTIFICATE_PATH) is required (the app registration\'s credential)')
  }
  return { kind: 'secret', clientSecret: secret ?? '' }
}

function readBackgroundSync (env: EnvReader): boolean {
  const value = env.optional('BACKGROUND_SYNC') ?? 'off'
  if (value === 'on' || value === 'off') return value === 'on'
  env.problems.push(`BACKGROUND_SYNC must be on or off, not ${JSON.stringify(value)}`)
  return false
}

/** `REDIS_CLUSTER=true`: a cluster has only database 0, so a database in REDIS_URL is refused, not ignored. */
function readRedisCluster (env: EnvReader): boolean {
  const raw = env.optional('REDIS_CLUSTER') ?? 'false'
  if (raw !== 'true' && raw !== 'false') {
    env.problems.push(`REDIS_CLUSTER must be true or false, got "${raw}"`)
    return false
  }
  const url = env.optional('REDIS_URL')
  const database = url !== undefined && URL.canParse(url) ? new URL(url).pathname.replace(/^\//, '') : ''
  if (raw === 'true' && database !== '' && database !== '0') {
    env.problems.push(`REDIS_URL must not name a database with REDIS_CLUSTER=true (a cluster has only database 0), got "/${database}"`)
  }
  return raw === 'true'
}

export function loadConfig (environment: Env): Config {
  const env = new EnvReader(environment)

  const callbackHostsRaw = env.optional('MARKETO_CALLBACK_HOSTS') ?? 'mkto-cfa.adobe.io'
  let callbackHosts: CallbackHostRule[] = []
  try {
    callbackHosts = parseCallbackHostAllowList(callbackHostsRaw)
  } catch (error) {
    env.problems.push(`MARKETO_CALLBACK_HOSTS: ${(error as Error).message}`)
  }

  const ssfsApiKey = env.required('SSFS_API_KEY', 'the API key Marketo sends in x-api-key')
  if (ssfsApiKey !== '' && ssfsApiKey.length < 16) {
    env.problems.push('SSFS_API_KEY must be at least 16 characters long')
  }

  const sealingKey = env.optional('JOB_SEALING_KEY')
  if (sealingKey !== undefined && sealingKey.length < 32) {
    env.problems.push('JOB_SEALING_KEY must be at least 32 characters long')
  }

  // Separate from the API key so rotating the key Marketo sends does not orphan queued callbacks.
  const jobSealingKey = sealingKey ?? ssfsApiKey

  const logLevel = env.optional('LOG_LEVEL') ?? 'info'
  if (!LOG_LEVELS.includes(logLevel)) {
    env.problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"`)
  }

  const adminApiKey = env.optional('ADMIN_API_KEY')
  if (adminApiKey !== undefined && adminApiKey.length < 16) {
    env.problems.push('ADMIN_API_KEY must be at least 16 characters long')
  }
  // The key Marketo holds must never open the admin surface (issue 13 §4).
  if (adminApiKey !== undefined && adminApiKey === ssfsApiKey) {
    env.problems.push('ADMIN_API_KEY must differ from SSFS_API_KEY (Marketo\'s key must not open the admin API)')
  }

  const port = env.integer('PORT', 3000, { min: 0, max: 65535 })
  const publicUrl = env.url('PUBLIC_URL', 'the URL Marketo calls this service at', {
    fallback: `http://localhost:${port}`,
    protocols: ['https:', 'http:']
  })
  const config: Config = {
    http: {
      host: env.optional('HOST') ?? '0.0.0.0',
      port,
      publicUrl
    },
    ops: {
      host: env.optional('OPS_HOST') ?? '0.0.0.0',
      // 9464: the port OpenTelemetry's Prometheus exporter made common for a process's metrics.
      port: env.integer('OPS_PORT', 9464, { min: 0, max: 65535 })
    },
    redis: {
      url: env.url('REDIS_URL', 'Redis connection', { fallback: 'redis://127.0.0.1:6379', protocols: ['redis:', 'rediss:'] }),
      keyPrefix: env.optional('REDIS_KEY_PREFIX') ?? 'mds',
      keyHashSecret: deriveKeyHashSecret(jobSealingKey),
      cluster: readRedisCluster(env)
    },
    ssfs: {
      apiKey: ssfsApiKey,
      jobSealingKey,
      callbackHosts,
      providerName: env.optional('SSFS_PROVIDER_NAME') ?? 'marketo-dynamics-sync',
      // Marketo shows it on the installed service (x-supportContact, an email or a URL). Unset: this
      // deployment's own API documentation, a page that exists, rather than an address nobody answers.
      supportContact: env.optional('SSFS_SUPPORT_CONTACT') ?? new URL('docs', publicUrl.endsWith('/') ? publicUrl : `${publicUrl}/`).href
    },
    marketo: {
      baseUrl: env.url('MARKETO_BASE_URL', 'REST and identity base, e.g. https://123-ABC-456.mktorest.com', { protocols: ['https:', 'http:'], httpOnlyOnLoopback: true }),
      clientId: env.required('MARKETO_CLIENT_ID', 'the LaunchPoint custom service\'s client id'),
      clientSecret: env.required('MARKETO_CLIENT_SECRET', 'the LaunchPoint custom service\'s client secret'),
      // Marketo's limits are the ceilings (reference marketo-rest-and-ssfs.md §2.4); 10 % of the usual
      // 50,000 a day, and 80 per 20 s and 8 at once, leave the rest to the customer's other integrations.
      callBudget: {
        dailyCalls: env.integer('MARKETO_DAILY_CALL_BUDGET', 5_000, { min: 1, max: 1_000_000 }),
        callsPer20s: env.integer('MARKETO_CALLS_PER_20S', 80, { min: 1, max: 100 }),
        concurrentCalls: env.integer('MARKETO_CONCURRENT_CALLS', 8, { min: 1, max: 10 })
      }
    },
    dynamics: {
      url: env.url('DYNAMICS_URL', 'the Dataverse environment URL, e.g. https://contoso.crm.dynamics.com', { protocols: ['https:', 'http:'], httpOnlyOnLoopback: true }),
      maxConcurrentRequests: env.integer('DYNAMICS_MAX_CONCURRENCY', 16, { min: 1, max: 52 }),
      // Dataverse's 52 per user (reference dataverse-web-api-and-msal.md §5), less a few for the API's
      // own look-ups, which are not counted in Redis.
      sharedConcurrentRequests: env.integer('DYNAMICS_TOTAL_CONCURRENCY', 48, { min: 1, max: 52 }),
      requestTimeoutMs: env.integer('DYNAMICS_REQUEST_TIMEOUT_MS', 30_000, { min: 100, max: 300_000 })
    },
    azure: {
      tenantId: env.required('AZURE_TENANT_ID', 'the Entra ID tenant of the app registration'),
      clientId: env.required('AZURE_CLIENT_ID', 'the app registration\'s application id'),
      credential: readAzureCredential(env),
      authorityHost: env.url('AZURE_AUTHORITY_HOST', 'the Entra ID authority host', {
        fallback: 'https://login.microsoftonline.com',
        protocols: ['https:']
      })
    },
    worker: {
      // Jobs spend their time waiting on Dynamics, not on CPU; Dataverse requests are bounded separately.
      concurrency: env.integer('WORKER_CONCURRENCY', 16, { min: 1, max: 128 }),
      // BullMQ's defaults: a killed worker's jobs run again within about 30 s.
      lockDurationMs: env.integer('WORKER_LOCK_DURATION_MS', 30_000, { min: 1_000, max: 600_000 }),
      stalledIntervalMs: env.integer('WORKER_STALLED_INTERVAL_MS', 30_000, { min: 500, max: 600_000 })
    },
    // The deadline the processes always had. A process manager must wait longer before its SIGKILL
    // (Kubernetes waits 30 s by default, `docker stop` 10 s: compose's stop_grace_period).
    shutdown: { deadlineMs: env.integer('SHUTDOWN_DEADLINE_MS', 30_000, { min: 1_000, max: 600_000 }) },
    flowStep: {
      attempts: env.integer('FLOW_STEP_ATTEMPTS', 10, { min: 1, max: 50 }),
      backoffMs: env.integer('FLOW_STEP_BACKOFF_MS', 2_000, { min: 10, max: 600_000 }),
      emailClaimTtlMs: env.integer('EMAIL_CLAIM_TTL_MS', 30_000, { min: 1_000, max: 600_000 })
    },
    callback: {
      attempts: env.integer('CALLBACK_ATTEMPTS', 12, { min: 1, max: 50 }),
      backoffMs: env.integer('CALLBACK_BACKOFF_MS', 2_000, { min: 10, max: 600_000 }),
      timeoutMs: env.integer('CALLBACK_TIMEOUT_MS', 15_000, { min: 100, max: 120_000 })
    },
    sync: {
      fieldMappingFile: resolve(env.optional('SYNC_FIELD_MAPPING_FILE') ?? DEFAULT_FIELD_MAPPING_FILE),
      enabled: readBackgroundSync(env),
      dynamicsPollIntervalMs: env.integer('SYNC_DYNAMICS_POLL_INTERVAL_MS', 2_000, { min: 200, max: 3_600_000 }),
      marketoPollIntervalMs: env.integer('SYNC_MARKETO_POLL_INTERVAL_MS', 5_000, { min: 200, max: 3_600_000 }),
      dynamicsPageSize: env.optional('SYNC_DYNAMICS_PAGE_SIZE') === undefined ? undefined : env.integer('SYNC_DYNAMICS_PAGE_SIZE', 5_000, { min: 1, max: 5_000 }),
      // Five minutes: the native sync "waits 5 minutes and then syncs again" (marketo-native-dynamics-
      // sync.md §1, Cycle); an idle Marketo → Dynamics direction falls behind it only when the budget forces it.
      marketoPollMaxIntervalMs: env.integer('SYNC_MARKETO_POLL_MAX_INTERVAL_MS', 300_000, { min: 200, max: 86_400_000 }),
      // Once a day: a delete there is flagged within a day, for 2,000 Dataverse requests a day per
      // 100,000 links (Dataverse allows 6,000 per 5 minutes per user, dataverse-web-api-and-msal.md §5).
      deletedRecordSweepIntervalMs: env.integer('SYNC_DELETED_RECORD_SWEEP_INTERVAL_MS', 86_400_000, { min: 1_000, max: 30 * 86_400_000 })
    },
    admin: { apiKey: adminApiKey },
    logLevel
  }

  if (config.sync.marketoPollMaxIntervalMs < config.sync.marketoPollIntervalMs) {
    env.problems.push(`SYNC_MARKETO_POLL_MAX_INTERVAL_MS (${config.sync.marketoPollMaxIntervalMs}) must not be below SYNC_MARKETO_POLL_INTERVAL_MS (${config.sync.marketoPollIntervalMs}), the fastest pace`)
  }

  if (env.problems.length > 0) throw new ConfigError(env.problems)
  return deepFreeze(config)
}

/**
 * HKDF-SHA256 (RFC 5869) of the job sealing key with its own `info` label: independent of the
 * AES key src/crypto/sealed-box.ts derives from the same secret under another label.
 */
function deriveKeyHashSecret (jobSealingKey: string): string {
  return Buffer.from(hkdfSync('sha256', jobSealingKey, 'marketo-dynamics-sync', 'redis-key-hash', 32)).toString('hex')
}

function deepFreeze<T> (value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const child of Object.values(value)) deepFreeze(child)
    Object.freeze(value)
  }
  return value
}
