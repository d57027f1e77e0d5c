import { Writable } from 'node:stream'
import pino from 'pino'
import type { FastifyInstance } from 'fastify'
import { loadConfig, type Config } from '../../src/config.ts'
import { loggerOptions } from '../../src/logger.ts'
import type { RunningWorker } from '../../src/build-worker.ts'
import { createFlowStepQueues, type FlowStepQueues } from '../../src/queue/create-queues.ts'
import type { FlowStepIntake } from '../../src/queue/flow-step-intake.ts'
import type { RedisClient } from '../../src/queue/connections.ts'
import { buildApiRuntime } from '../../src/runtime/api-runtime.ts'
import { buildWorkerRuntime } from '../../src/runtime/worker-runtime.ts'
import { startSandbox, type Sandbox, type SandboxOptions } from '../../sandbox/start-sandbox.ts'
import type { InstalledService } from '../../sandbox/marketo/index.ts'

/**
 * The product as it runs, on the sandbox: real Redis (a redis-server started for the test file),
 * real BullMQ, real MSAL over HTTPS to the Azure AD emulator, real HTTP to the Dataverse and
 * Marketo emulators. The API and a worker are built in this process with the very functions
 * `npm start` and `npm run worker` use, from the environment the sandbox hands out, and the
 * flow step is installed in the emulated Marketo from the API's own `/openapi.json`.
 */
export interface FlowStepHarness {
  readonly sandbox: Sandbox
  readonly config: Config
  readonly app: FastifyInstance
  /** The queues, for inspection (the API itself only appends to the intake). */
  readonly queues: FlowStepQueues
  readonly intake: FlowStepIntake
  readonly redis: RedisClient
  readonly service: InstalledService
  /** Every log line the API and worker wrote so far, parsed. */
  readonly logs: () => Array<Record<string, unknown>>
  readonly logText: () => string
  startWorker (): RunningWorker
  close (): Promise<void>
}

interface Teardown { teardown (fn: () => Promise<void> | void): void }

export async function startFlowStepHarness (t: Teardown, options: SandboxOptions & { withWorker?: boolean } = {}): Promise<FlowStepHarness> {
  const sandbox = await startSandbox({
    ...options,
    env: { CALLBACK_BACKOFF_MS: '100', FLOW_STEP_BACKOFF_MS: '100', LOG_LEVEL: 'debug', ...options.env }
  })
  const lines: string[] = []
  const sink = new Writable({
    write (chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter((line) => line !== ''))
      done()
    }
  })
  const config = loadConfig(sandbox.env)
  const logger = pino(loggerOptions(config.logLevel, 'test'), sink)

  const { app, intake, redis } = await buildApiRuntime(config, logger)
  const queues = createFlowStepQueues(redis, { prefix: config.redis.keyPrefix, onError: () => undefined, flowStepRetry: config.flowStep, callbackRetry: config.callback })
  await app.listen({ host: config.http.host, port: config.http.port })

  const workers: RunningWorker[] = []
  const startWorker = () => {
    const worker = buildWorkerRuntime(config, logger)
    workers.push(worker)
    return worker
  }
  if (options.withWorker !== false) startWorker()

  const service = await sandbox.marketo.installService({ openapiUrl: `${sandbox.publicUrl}/openapi.json`, apiKey: config.ssfs.apiKey })

  let closed = false
  const close = async () => {
    if (closed) return
    closed = true
    for (const worker of workers) await worker.close()
    await queues.close()
    await app.close()
    await sandbox.close()
  }
  t.teardown(close)
  return {
    sandbox,
    config,
    app,
    queues,
    intake,
    redis,
    service,
    logs: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>),
    logText: () => lines.join('\n'),
    startWorker,
    close
  }
}

/** Polls `condition` until it returns a value other than undefined, or fails at the deadline. */
export async function eventually<T> (condition: () => Promise<T | undefined> | T | undefined, { timeoutMs = 15_000, intervalMs = 25, what = 'condition' } = {}): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await condition()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, intervalMs))
  }
}
