import { fileURLToPath } from 'node:url'
import { Writable } from 'node:stream'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startSandbox, type Sandbox, type SandboxOptions } from '../../sandbox/start-sandbox.ts'
import { describeExit, spawnServiceProcess, type ServiceProcess } from '../../sandbox/service-processes.ts'
import { waitUntilReady } from '../../sandbox/wait-until-ready.ts'
import type { InstalledService } from '../../sandbox/marketo/index.ts'
import { stopOnSignal } from './stop-on-signal.ts'

/**
 * What `npm run sandbox` starts, for a benchmark: a local redis-server and the emulators in this
 * process (so the benchmark can watch Dataverse and Marketo directly), the API and workers as the
 * separate processes they are in production. Their logs are kept in memory (the last lines are
 * printed if a process dies) instead of being relayed: a terminal that reads slowly would make
 * pino's synchronous stdout writes block the service and distort the figures.
 */

export const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url))
const READY_TIMEOUT_MS = 30_000
const STOP_DEADLINE_MS = 15_000

/**
 * Environment the benchmarks run the services with unless they say otherwise (printed and written
 * to the results). The time-to-lead and memory benchmarks measure the worker at `warn`; the
 * intake benchmark runs the API at the default level, `info` (one access line per request,
 * src/http/access-log.ts), and at `warn` beside it (bench/intake.bench.ts).
 */
export const BENCH_SERVICE_ENV: Readonly<Record<string, string>> = {
  LOG_LEVEL: 'warn'
}

export interface ServiceStack {
  readonly sandbox: Sandbox
  readonly api: ServiceProcess | undefined
  readonly workers: readonly ServiceProcess[]
  readonly env: Readonly<Record<string, string>>
  /** The flow step as installed in the emulated Marketo (for `marketo.runCampaign`). */
  readonly installed: InstalledService | undefined
  /** Another worker process; `env` overrides the stack's environment for it (e.g. WORKER_CONCURRENCY). */
  startWorker (env?: Readonly<Record<string, string>>): Promise<ServiceProcess>
  stopWorkers (): Promise<void>
  /** Lines the services wrote at `warn` or above. */
  problems (): readonly string[]
  close (): Promise<void>
}

export interface ServiceStackOptions extends SandboxOptions {
  readonly api?: boolean
  readonly workers?: number
  /** Install the flow step in the emulated Marketo (needs the API). */
  readonly install?: boolean
  /**
   * Run `npm run build`'s output (dist/src/*.js) on plain node, as the image does, instead of
   * src/*.ts through tsx (`npm start`, `npm run worker`). The caller builds it first.
   */
  readonly compiled?: boolean
}

/** The API's and the worker's entry files: through tsx from src/, or compiled. */
export function serviceEntries (compiled: boolean): { readonly api: string, readonly worker: string } {
  return compiled ? { api: 'dist/src/server.js', worker: 'dist/src/worker.js' } : { api: 'src/server.ts', worker: 'src/worker.ts' }
}

export async function startServiceStack (options: ServiceStackOptions = {}): Promise<ServiceStack> {
  // Redis as shipped (docker-compose.yml: AOF, fsync before every reply), so the figures are what a
  // deployment gets, not those of a Redis that keeps nothing.
  const aofDir = options.redisUrl === undefined ? await mkdtemp(join(tmpdir(), 'mds-bench-redis-')) : undefined
  const sandbox = await startSandbox({ ...options, redisAppendOnlyDir: aofDir, env: { ...BENCH_SERVICE_ENV, ...options.env } })
  const env = { ...process.env, ...sandbox.env } as Record<string, string>
  const entries = serviceEntries(options.compiled === true)
  const workers: ServiceProcess[] = []
  const recent: string[] = []
  const problems: string[] = []
  let closing = false

  const spawn = (name: string, entry: string, extraEnv: Readonly<Record<string, string>> = {}): ServiceProcess => {
    const output = new Writable({
      write (chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString('utf8').split('\n')) {
          if (line === '') continue
          recent.push(line)
          if (recent.length > 200) recent.shift()
          if (/"level":(40|50|60)/.test(line) && problems.length < 1000) problems.push(line)
        }
        done()
      }
    })
    const service = spawnServiceProcess({ name, entry, cwd: PROJECT_ROOT, env: { ...env, ...extraEnv }, output })
    void service.exited.then((exit) => {
      if (closing) return
      process.stderr.write(`[bench] ${describeExit(exit)} unexpectedly; its last lines:\n${recent.slice(-30).join('\n')}\n`)
      process.exitCode = 1
    })
    return service
  }
  process.on('exit', () => {
    api?.killNow()
    for (const worker of workers) worker.killNow()
    sandbox.redis.local?.killNow()
  })
  const stopServices = async () => {
    closing = true
    await Promise.all([api, ...workers].map(async (service) => await service?.stop(STOP_DEADLINE_MS)))
  }
  const removeAof = async () => { if (aofDir !== undefined) await rm(aofDir, { recursive: true, force: true }) }
  const forgetOnSignal = stopOnSignal(async () => { await stopServices(); await sandbox.close(); await removeAof() })

  let api: ServiceProcess | undefined
  let installed: InstalledService | undefined
  try {
    if (options.api !== false) {
      api = spawn('api', entries.api)
      await waitUntilReady(`${sandbox.publicUrl}/health/ready`, { timeoutMs: READY_TIMEOUT_MS })
      if (options.install === true) {
        installed = await sandbox.marketo.installService({ openapiUrl: `${sandbox.publicUrl}/openapi.json`, apiKey: sandbox.env.SSFS_API_KEY ?? '' })
      }
    }
    for (let i = 0; i < (options.workers ?? 0); i++) workers.push(spawn(`worker-${i + 1}`, entries.worker))
  } catch (error) {
    await stopServices()
    await sandbox.close()
    await removeAof()
    forgetOnSignal()
    throw error
  }

  return {
    sandbox,
    get api () { return api },
    workers,
    env,
    installed,
    async startWorker (workerEnv = {}) {
      const worker = spawn(`worker-${workers.length + 1}`, entries.worker, workerEnv)
      workers.push(worker)
      return worker
    },
    async stopWorkers () {
      closing = true
      await Promise.all(workers.map(async (worker) => await worker.stop(STOP_DEADLINE_MS)))
      workers.length = 0
      closing = false
    },
    problems: () => problems,
    async close () {
      await stopServices()
      await sandbox.close()
      await removeAof()
      forgetOnSignal()
    }
  }
}
