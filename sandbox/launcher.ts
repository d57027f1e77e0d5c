import { fileURLToPath } from 'node:url'
import { loadConfig } from '../src/config.ts'
import { startSandbox, SANDBOX_CREDENTIALS, SANDBOX_USERS, type Sandbox } from './start-sandbox.ts'
import { RedisServerNotFoundError } from './redis-server.ts'
import { LaunchOptionError, resolveLaunchOptions } from './launch-options.ts'
import { describeExit, spawnServiceProcess, type ServiceProcess } from './service-processes.ts'
import { buildSandboxGuide, type BackgroundSyncDemo, type SandboxGuideFacts, type SeededPerson } from './sandbox-guide.ts'
import { waitUntilReady } from './wait-until-ready.ts'
import { findEntityDefinition } from './dataverse/entity-model.ts'

/**
 * `npm run sandbox`: the whole service on loopback, as it runs in production — the API
 * (`npm start`) and one worker (`npm run worker`) as separate processes configured only by the
 * environment `startSandbox` hands out — against a local Redis and the Azure AD, Dataverse and
 * Marketo emulators, with the flow step installed in the emulated Marketo and a short guide printed.
 */

const PROJECT_ROOT = fileURLToPath(new URL('../', import.meta.url))
const API_READY_TIMEOUT_MS = 30_000
/** The services' own shutdown deadline is 30 s; the sandbox has nothing worth waiting that long for. */
const SERVICE_STOP_DEADLINE_MS = 10_000

function say (text: string): void {
  process.stdout.write(`[sandbox] ${text}\n`)
}

async function main (): Promise<void> {
  // Kept as a promise so a signal during start-up still closes what startSandbox brings up.
  let sandboxStart: Promise<Sandbox> | undefined
  const services: ServiceProcess[] = []
  const startup = new AbortController()
  let stopping: Promise<never> | undefined

  // Stops what has been started so far, whatever stage start-up reached; runs once.
  const stopEverything = (exitCode: number): Promise<never> => {
    stopping ??= (async () => {
      startup.abort()
      await Promise.all(services.map(async (service) => await service.stop(SERVICE_STOP_DEADLINE_MS)))
      const sandbox = await sandboxStart?.catch(() => undefined)
      await sandbox?.close()
      say('stopped')
      process.exit(exitCode)
    })()
    return stopping
  }
  // `on`, not `once`: tsx's own signal hook exits the process at once (code 130) when a signal
  // arrives and nobody listens, and a terminal may deliver Ctrl-C twice. Repeats change nothing.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      if (stopping === undefined) say(`${signal}: stopping the API, the worker, the emulators and Redis`)
      void stopEverything(0)
    })
  }
  // The services and Redis run in their own process groups, so a terminal's Ctrl-C reaches only
  // this launcher, which stops them in order: the services first (they close their Redis
  // connections and finish active jobs), then the emulators, Redis last. Never leave one behind,
  // even on a crash.
  let startedSandbox: Sandbox | undefined
  process.on('exit', () => {
    for (const service of services) service.killNow()
    startedSandbox?.redis.local?.killNow()
  })

  try {
    const options = await resolveLaunchOptions(process.env)
    say(options.redisUrl === undefined
      ? 'starting Redis and the Azure AD, Dataverse and Marketo emulators…'
      : `starting the Azure AD, Dataverse and Marketo emulators (Redis: ${options.redisUrl})…`)
    sandboxStart = startSandbox({ ...options, redisOwnProcessGroup: true })
    const sandbox = await sandboxStart
    startedSandbox = sandbox
    if (stopping !== undefined) return await stopping

    const childEnv = serviceEnv(sandbox)
    for (const [name, entry] of [['api', 'src/server.ts'], ['worker', 'src/worker.ts']] as const) {
      const service = spawnServiceProcess({ name, entry, cwd: PROJECT_ROOT, env: childEnv, output: process.stdout })
      services.push(service)
      void service.exited.then((exit) => {
        if (stopping !== undefined) return
        process.stderr.write(`[sandbox] ${describeExit(exit)} unexpectedly (its output is above); stopping everything\n`)
        void stopEverything(1)
      })
    }

    await waitUntilReady(`${sandbox.publicUrl}/health/ready`, { timeoutMs: API_READY_TIMEOUT_MS, signal: startup.signal })
    const flowStep = await sandbox.marketo.installService({ openapiUrl: `${sandbox.publicUrl}/openapi.json`, apiKey: sandbox.env.SSFS_API_KEY ?? '' })
    if (stopping !== undefined) return await stopping
    process.stdout.write(buildSandboxGuide(guideFacts(sandbox, services, flowStep.displayName)))
  } catch (error) {
    // Aborted by a signal or a crashed service: that path is already stopping everything.
    if (stopping !== undefined) return await stopping
    process.stderr.write(`[sandbox] ${explainStartFailure(error)}\n`)
    await stopEverything(1)
  }
}

/**
 * The emulated Marketo is this sandbox's alone, so its whole daily quota (50,000) is the sync's budget and the
 * Marketo feed is read every 5 s even at idle: an edit in the demo arrives in seconds. A deployment shares its
 * instance's quota with other integrations and keeps the defaults (10 %, and a pace that adapts to it). Set either
 * variable to override.
 */
const SANDBOX_SYNC_PACE: Readonly<Record<string, string>> = { MARKETO_DAILY_CALL_BUDGET: '50000', SYNC_MARKETO_POLL_MAX_INTERVAL_MS: '5000' }

/** What the API and the worker run with: the sandbox's settings over the terminal's, over the sandbox's sync pace. */
function serviceEnv (sandbox: Sandbox): Record<string, string | undefined> {
  return { ...SANDBOX_SYNC_PACE, ...process.env, ...sandbox.env }
}

function guideFacts (sandbox: Sandbox, services: readonly ServiceProcess[], flowStepName: string): SandboxGuideFacts {
  const demo = serviceEnv(sandbox).BACKGROUND_SYNC === 'on' ? backgroundSyncDemo(sandbox) : undefined
  const emailsOf = (entitySet: string) => new Set(sandbox.dataverse.store.list(entitySet).map((row) => String(row.emailaddress1 ?? '').toLowerCase()))
  const leadEmails = emailsOf('leads')
  const contactEmails = emailsOf('contacts')
  const persons: SeededPerson[] = sandbox.marketo.persons.list().map((person) => ({
    id: person.id,
    email: String(person.email ?? ''),
    firstName: String(person.firstName ?? '')
  }))
  const pidOf = (name: string) => services.find((service) => service.name === name)?.pid
  return {
    publicUrl: sandbox.publicUrl,
    apiKey: sandbox.env.SSFS_API_KEY ?? '',
    ...(sandbox.env.ADMIN_API_KEY === undefined ? {} : { adminApiKey: sandbox.env.ADMIN_API_KEY }),
    marketoUrl: sandbox.marketo.url,
    dataverseUrl: sandbox.dataverse.url,
    azureAdUrl: sandbox.azureAd.authorityHost,
    redis: { url: sandbox.redis.url, startedHere: sandbox.redis.local !== undefined },
    processes: [
      { label: 'API', command: 'npm start', url: sandbox.publicUrl, pid: pidOf('api') },
      { label: 'Worker', command: 'npm run worker', pid: pidOf('worker') }
    ],
    launcherPid: process.pid,
    flowStepName,
    persons,
    dynamics: {
      hasLead: (email) => leadEmails.has(email.toLowerCase()),
      hasContact: (email) => contactEmails.has(email.toLowerCase()),
      leadFirstNameMaxLength: findEntityDefinition('leads')?.columns.firstname?.maxLength ?? 50
    },
    assignTo: { name: SANDBOX_USERS.dana.fullname, systemuserid: SANDBOX_USERS.dana.systemuserid },
    // `BACKGROUND_SYNC=on npm run sandbox`: the worker runs the sync, and the guide shows an edit each way.
    ...(demo === undefined ? {} : { backgroundSync: demo })
  }
}

/** The seeded lead that has a seeded person's email: the pair the guide edits each way. */
function backgroundSyncDemo (sandbox: Sandbox): BackgroundSyncDemo | undefined {
  const lead = sandbox.dataverse.store.list('leads').find((row) => typeof row.emailaddress1 === 'string' && sandbox.marketo.persons.findByEmail(row.emailaddress1) !== undefined)
  if (lead === undefined) return undefined
  const email = String(lead.emailaddress1)
  const config = loadConfig(serviceEnv(sandbox))
  return {
    leadId: String(lead.leadid),
    personId: sandbox.marketo.persons.findByEmail(email)!.id,
    email,
    editor: { name: SANDBOX_USERS.dana.fullname, systemuserid: SANDBOX_USERS.dana.systemuserid },
    token: {
      url: `${sandbox.azureAd.authorityHost}/${SANDBOX_CREDENTIALS.tenantId}/oauth2/v2.0/token`,
      clientId: SANDBOX_CREDENTIALS.azureClientId,
      clientSecret: SANDBOX_CREDENTIALS.azureClientSecret,
      caPath: sandbox.tls.caPath
    },
    dynamicsPollIntervalMs: config.sync.dynamicsPollIntervalMs,
    marketoPollIntervalMs: config.sync.marketoPollIntervalMs
  }
}

/** Problems a newcomer can fix from one line; anything else keeps its stack. */
function explainStartFailure (error: unknown): string {
  if (error instanceof RedisServerNotFoundError || error instanceof LaunchOptionError) return error.message
  const { code, port } = error as { code?: string, port?: number }
  if (code === 'EADDRINUSE') {
    return `port ${port ?? ''} is already in use: choose others with PORT, SANDBOX_MARKETO_PORT, SANDBOX_DATAVERSE_PORT, SANDBOX_AZURE_AD_PORT (0 = any free port)`
  }
  return `failed to start: ${(error as Error).stack ?? String(error)}`
}

main().catch((error: unknown) => {
  process.stderr.write(`[sandbox] ${(error as Error).stack ?? String(error)}\n`)
  process.exit(1)
})
