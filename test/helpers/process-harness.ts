import { Writable } from 'node:stream'
import type { Test } from 'tap'
import { fileURLToPath } from 'node:url'
import { startSandbox, type Sandbox, type SandboxOptions } from '../../sandbox/start-sandbox.ts'
import { spawnServiceProcess, type ServiceProcess } from '../../sandbox/service-processes.ts'
import { waitUntilReady } from '../../sandbox/wait-until-ready.ts'
import type { InstalledService } from '../../sandbox/marketo/index.ts'
import type { CampaignKind } from '../../sandbox/marketo/invocation-ledger.ts'
import type { InvocationResult } from '../../sandbox/marketo/campaign-runner.ts'
import { eventually } from './flow-step-harness.ts'

/**
 * The service as it is deployed: the API (`src/server.ts`) and N workers (`src/worker.ts`) as real
 * child processes, configured only by their environment, on a real Redis and the sandbox's
 * emulators — so a fault test can SIGKILL a worker or restart Redis under them. Every line the
 * processes write (stdout and stderr) is kept in memory for the secrecy checks.
 *
 * Retry and lock timings are shortened (overridable through `env`) so that outages of a few
 * seconds exercise the same code paths production's minutes do.
 */

const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url))

export const FAST_RETRIES: Readonly<Record<string, string>> = {
  LOG_LEVEL: 'debug',
  FLOW_STEP_BACKOFF_MS: '200',
  CALLBACK_BACKOFF_MS: '200',
  CALLBACK_TIMEOUT_MS: '2000',
  DYNAMICS_REQUEST_TIMEOUT_MS: '2000',
  // A killed worker's active jobs are handed to another worker within ~7 s instead of ~60 s.
  WORKER_LOCK_DURATION_MS: '5000',
  WORKER_STALLED_INTERVAL_MS: '1000',
  // A create whose answer never came (a timeout: on a loaded machine one slow response is enough)
  // leaves its email's claim to lapse; the retry waits 6 s for it instead of 30. Still three
  // heartbeats (TTL/3) per lifetime, so a live holder never loses it.
  EMAIL_CLAIM_TTL_MS: '6000'
}

/**
 * The configured timings a fault scenario's recovery is made of, read from the service's own
 * environment, so deadlines follow the configuration instead of being guessed.
 */
export interface RecoveryTimings {
  readonly emailClaimTtlMs: number
  readonly lockDurationMs: number
  readonly stalledIntervalMs: number
  readonly flowStepBackoffMs: number
  readonly callbackBackoffMs: number
}

/** The worker connections' reconnect back-off cap (src/queue/connections.ts). */
const WORKER_RECONNECT_MAX_BACKOFF_MS = 5_000

/**
 * The longest a person can rightly wait once everything is reachable again, each delay at most
 * once: the worker reconnects; a job whose lock lapsed is found stalled (lock + two checks); a
 * claim left by a create of unknown outcome lapses; the job's and its callback's retries back
 * off (three doublings each). Doubled, and 20 s added for the work itself on a slow machine.
 */
export function recoveryDeadlineMs (timings: RecoveryTimings): number {
  const backoffs = 7 * (timings.flowStepBackoffMs + timings.callbackBackoffMs)
  const waits = WORKER_RECONNECT_MAX_BACKOFF_MS + timings.lockDurationMs + 2 * timings.stalledIntervalMs + timings.emailClaimTtlMs + backoffs
  return 2 * waits + 20_000
}

function recoveryTimingsOf (env: Readonly<Record<string, string>>): RecoveryTimings {
  const ms = (name: string, fallback: number) => env[name] === undefined ? fallback : Number(env[name])
  return {
    emailClaimTtlMs: ms('EMAIL_CLAIM_TTL_MS', 30_000),
    lockDurationMs: ms('WORKER_LOCK_DURATION_MS', 30_000),
    stalledIntervalMs: ms('WORKER_STALLED_INTERVAL_MS', 30_000),
    flowStepBackoffMs: ms('FLOW_STEP_BACKOFF_MS', 2_000),
    callbackBackoffMs: ms('CALLBACK_BACKOFF_MS', 2_000)
  }
}

export interface ProcessHarnessOptions extends Pick<SandboxOptions, 'redisUrl' | 'dataverseLatencyMs' | 'requiredFields'> {
  readonly workers?: number
  /** The workers' entry file (default `src/worker.ts`); fault tests may run a test-only one. */
  readonly workerEntry?: string
  /** The API's entry, `src/server.ts` unless a test runs the compiled build. */
  readonly apiEntry?: string
  /** Service environment on top of the sandbox's and FAST_RETRIES. */
  readonly env?: Readonly<Record<string, string>>
}

/** What the reconciliation needs of an invocation: its callback token and its persons. */
export type AcceptedInvocation = Pick<InvocationResult, 'token' | 'personIds'>

export interface Reconciliation {
  readonly invocations: number
  readonly persons: number
  readonly outcomes: { readonly created: number, readonly existed: number, readonly failed: number }
  /** Persons reported failed, with what Marketo's activity log shows them. */
  readonly failures: ReadonlyArray<{ readonly personId: number, readonly errorCode?: string, readonly reason?: string }>
  /** Broken promises, one sentence each; empty when every accepted person is accounted for. */
  readonly problems: readonly string[]
}

interface CallbackItem {
  leadData: { id: number, microsoftRecordId?: string }
  activityData: { success: boolean, outcome: 'created' | 'existed' | 'failed', reason?: string, errorCode?: string }
}

export interface ProcessHarness {
  readonly sandbox: Sandbox
  readonly service: InstalledService
  /** The timings the services run with (see `recoveryDeadlineMs`). */
  readonly timings: RecoveryTimings
  readonly api: ServiceProcess
  /** Worker processes started so far (killed ones included), by index. */
  readonly workers: readonly ServiceProcess[]
  startWorker (entry?: string): Promise<ServiceProcess>
  killWorker (index: number, signal: NodeJS.Signals): Promise<void>
  /** New Marketo persons with unique emails `<label>.<n>@example.com`. */
  createPersons (count: number, label: string): number[]
  /** Runs a campaign in the emulated Marketo; answers every invocation it sent (accepted or not). */
  runCampaign (personIds: readonly number[], kind?: CampaignKind): Promise<InvocationResult[]>
  reconcile (accepted: readonly AcceptedInvocation[], options?: { timeoutMs?: number }): Promise<Reconciliation>
  /** Every line the API and workers wrote, prefixed `[api] ` / `[worker-N] `. */
  logText (): string
  /**
   * Secrets, tokens, keys and email addresses found in the logs (should be none): every secret the
   * sandbox's environment holds, the invocations' tokens and callback keys, and `personalData`, the
   * values a test gave persons and records (names, titles), which no log line may carry either.
   */
  leaksInLogs (personalData?: readonly string[]): string[]
  close (): Promise<void>
}

interface Teardown { teardown (fn: () => Promise<void> | void): void }

export async function startProcessHarness (t: Teardown, options: ProcessHarnessOptions = {}): Promise<ProcessHarness> {
  const sandbox = await startSandbox({
    ...(options.redisUrl === undefined ? {} : { redisUrl: options.redisUrl }),
    ...(options.dataverseLatencyMs === undefined ? {} : { dataverseLatencyMs: options.dataverseLatencyMs }),
    requiredFields: options.requiredFields ?? { leads: ['lastname'] },
    env: { ...FAST_RETRIES, ...options.env }
  })
  const lines: string[] = []
  const output = new Writable({
    write (chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter((line) => line !== ''))
      done()
    }
  })
  const env = { ...process.env, ...sandbox.env }
  const spawned: ServiceProcess[] = []
  const workers: ServiceProcess[] = []
  const spawn = (name: string, entry: string) => {
    const service = spawnServiceProcess({ name, entry, cwd: PROJECT_ROOT, env, output })
    spawned.push(service)
    return service
  }
  // The children run in their own process groups: never leave one behind, even if this test crashes.
  const killLeftovers = () => { for (const service of spawned) service.killNow() }
  process.once('exit', killLeftovers)

  let closed = false
  const close = async () => {
    if (closed) return
    closed = true
    await Promise.all(spawned.map(async (service) => await service.stop(5_000)))
    process.off('exit', killLeftovers)
    await sandbox.close()
  }
  t.teardown(close)

  const startWorker = async (entry = options.workerEntry ?? 'src/worker.ts') => {
    const name = `worker-${workers.length + 1}`
    const worker = spawn(name, entry)
    workers.push(worker)
    await eventually(() => lines.some((line) => line.startsWith(`[${name}] `) && line.includes('"worker started"')) || undefined,
      { timeoutMs: 30_000, intervalMs: 50, what: `${name} to start` })
    return worker
  }

  const api = spawn('api', options.apiEntry ?? 'src/server.ts')
  await Promise.all([
    waitUntilReady(`${sandbox.publicUrl}/health/ready`, { timeoutMs: 30_000 }),
    ...Array.from({ length: options.workers ?? 1 }, async () => await startWorker())
  ])
  const service = await sandbox.marketo.installService({ openapiUrl: `${sandbox.publicUrl}/openapi.json`, apiKey: sandbox.env.SSFS_API_KEY ?? '' })
  const { marketo, dataverse } = sandbox

  return {
    sandbox,
    service,
    timings: recoveryTimingsOf(sandbox.env),
    api,
    workers,
    startWorker,
    async killWorker (index, signal) {
      const worker = workers[index]
      if (worker === undefined) throw new Error(`no worker ${index}`)
      process.kill(worker.pid ?? 0, signal)
      await worker.exited
    },
    createPersons (count, label) {
      return Array.from({ length: count }, (_, i) => marketo.persons.create({ email: `${label}.${i}@example.com`, firstName: `${label}${i}`, lastName: 'Fault' }))
    },
    async runCampaign (personIds, kind = 'batch') {
      return (await marketo.runCampaign(service, { personIds, kind, flowStepContext: { syncAs: 'Lead' } })).invocations
    },
    async reconcile (accepted, { timeoutMs = 30_000 } = {}) {
      const problems: string[] = []
      const failures: Array<{ personId: number, errorCode?: string, reason?: string }> = []
      const outcomes = { created: 0, existed: 0, failed: 0 }
      const recordsWithEmail = (email: string) => [
        ...dataverse.store.list('leads').filter((l) => String(l.emailaddress1).toLowerCase() === email).map((l) => String(l.leadid)),
        ...dataverse.store.list('contacts').filter((c) => String(c.emailaddress1).toLowerCase() === email).map((c) => String(c.contactid))
      ]
      const callbacks = await Promise.all(accepted.map(async (invocation) =>
        await marketo.waitForCallback(invocation.token, { timeoutMs }).catch(() => undefined)))
      for (const [index, invocation] of accepted.entries()) {
        const callback = callbacks[index]
        if (callback === undefined) {
          problems.push(`invocation ${invocation.token}: no callback accepted by Marketo within ${timeoutMs} ms`)
          continue
        }
        const items = (callback.body as { objectData: CallbackItem[] }).objectData
        for (const personId of invocation.personIds) {
          const reported = items.filter((item) => item.leadData.id === personId)
          if (reported.length !== 1) {
            problems.push(`person ${personId}: reported ${reported.length} times in its invocation's callback`)
            continue
          }
          const { leadData, activityData } = reported[0]!
          outcomes[activityData.outcome] += 1
          if (activityData.outcome === 'failed') {
            failures.push({ personId, errorCode: activityData.errorCode, reason: activityData.reason })
            if ((activityData.reason ?? '') === '') problems.push(`person ${personId}: failed without a reason`)
            continue
          }
          const email = String(marketo.persons.get(personId)?.email ?? '').toLowerCase()
          const records = recordsWithEmail(email)
          if (records.length !== 1) problems.push(`person ${personId}: ${activityData.outcome}, but Dynamics holds ${records.length} leads/contacts for the email`)
          else if (records[0] !== leadData.microsoftRecordId) problems.push(`person ${personId}: reported record ${leadData.microsoftRecordId}, Dynamics holds ${records[0]}`)
        }
      }
      const emails = new Map<string, number>()
      for (const lead of dataverse.store.list('leads')) {
        const email = String(lead.emailaddress1 ?? '').toLowerCase()
        if (email !== '') emails.set(email, (emails.get(email) ?? 0) + 1)
      }
      const duplicated = [...emails.values()].filter((count) => count > 1).length
      if (duplicated > 0) problems.push(`${duplicated} email(s) have more than one lead in Dynamics`)
      return {
        invocations: accepted.length,
        persons: accepted.reduce((sum, invocation) => sum + invocation.personIds.length, 0),
        outcomes,
        failures,
        problems
      }
    },
    logText: () => lines.join('\n'),
    leaksInLogs (personalData = []) {
      const text = lines.join('\n')
      // Every secret the environment holds, by name (a new one is covered without an edit here);
      // a key prefix names keys, it keeps nothing secret.
      const environmentSecrets = Object.entries(sandbox.env)
        .filter(([name]) => /KEY|SECRET|PASSWORD|TOKEN/.test(name) && !name.endsWith('_PREFIX'))
        .map(([, value]) => value)
      const redisPassword = decodeURIComponent(new URL(sandbox.env.REDIS_URL ?? 'redis://localhost').password)
      const secrets = [
        ...environmentSecrets, redisPassword,
        ...marketo.invocations().flatMap((invocation) => [invocation.token, invocation.apiCallBackKey])
      ].filter((secret): secret is string => secret !== undefined && secret !== '')
      const leaks = secrets.filter((secret) => text.includes(secret)).map((secret) => `secret ${secret.slice(0, 4)}…`)
      for (const value of personalData) {
        if (value !== '' && text.includes(value)) leaks.push(`personal data in: ${lineAround(text, text.indexOf(value))}`)
      }
      const patterns: Array<[string, RegExp]> = [
        ['email address', /[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/],
        ['bearer token', /Bearer [A-Za-z0-9]/],
        ['JWT (Azure AD access token)', /eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}/],
        ['Marketo access token', /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}:emu/]
      ]
      for (const [what, pattern] of patterns) {
        const match = pattern.exec(text)
        if (match !== null) leaks.push(`${what} in: ${lineAround(text, match.index)}`)
      }
      return leaks
    },
    close
  }
}

function lineAround (text: string, index: number): string {
  const start = text.lastIndexOf('\n', index) + 1
  const end = text.indexOf('\n', index)
  return text.slice(start, end === -1 ? undefined : end).slice(0, 300)
}

/**
 * Issue item 7, run at the end of every fault scenario so the logs of the whole fault-test run
 * are covered: debug-level output of the API and every worker, including their failures.
 */
export function testLogsKeepSecrets (t: Test, h: ProcessHarness): void {
  t.test('the logs hold no secret, token, API key or email address', async (t) => {
    t.ok(h.logText().includes('"flow-step batch synced"'), 'the logs cover the work done')
    t.same(h.leaksInLogs(), [])
  })
}

/** The invocations the service answered 201: the ones whose persons it promised to report. */
export function acceptedOnly (invocations: readonly InvocationResult[]): InvocationResult[] {
  return invocations.filter((invocation) => invocation.status === 201)
}
