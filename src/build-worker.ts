import type { RedisClient } from './queue/connections.ts'
import type { Logger } from 'pino'
import type { Config } from './config.ts'
import type { WorkerFeature } from './feature-module.ts'
import { closeInOrder } from './feature-module.ts'
import { RedisReachability } from './queue/redis-reachability.ts'
import { handBackDelayMs } from './runtime/process-lifecycle.ts'
import type { JobObserver } from './metrics/job-metrics.ts'

export interface WorkerDeps {
  readonly config: Config
  readonly logger: Logger
  /** Worker-policy connections (src/queue/connections.ts), created for the features as they ask. */
  readonly connect: (name: string) => RedisClient
  /**
   * Worker-policy connections the runtime made before any feature (the Marketo client's call
   * budget): watched like the features' own and closed after every feature, as theirs are.
   */
  readonly sharedConnections?: readonly RedisClient[]
  /** What this worker process runs (src/runtime/worker-runtime.ts lists them). */
  readonly features: readonly WorkerFeature[]
  /** Job durations and outcomes of every feature's workers (src/metrics/job-metrics.ts); none: not counted. */
  readonly jobObserver?: JobObserver
}

export interface RunningWorker {
  /**
   * Settles once every feature has started; rejects with the first feature's start-up error.
   * `src/worker.ts` awaits it, so a start-up check that fails ends the process as a config error does.
   */
  readonly ready: Promise<void>
  /**
   * Idempotent: closes every feature (each waits for its active jobs; those still running near
   * `SHUTDOWN_DEADLINE_MS` are handed back), then the connections.
   */
  close (): Promise<void>
}

/**
 * A worker process: its features started on shared, watched Redis connections. A lost Redis is
 * logged once per outage, at which address (src/queue/redis-reachability.ts), while every
 * connection keeps retrying.
 */
export function buildWorker (deps: WorkerDeps): RunningWorker {
  const { config, logger } = deps
  const reachability = new RedisReachability({ url: config.redis.url, logger })
  const connections: RedisClient[] = (deps.sharedConnections ?? []).map((connection) => reachability.watch(connection))
  const connect = (name: string) => {
    const connection = reachability.watch(deps.connect(name))
    connections.push(connection)
    return connection
  }
  const onQueueError = (error: Error, queue: string) => {
    if (!reachability.accountFor(error)) logger.error({ err: error, queue }, 'queue connection error')
  }
  const running = deps.features.map((feature) => ({
    name: feature.name,
    running: feature.start({ config, logger: logger.child({ feature: feature.name }), connect, onQueueError, ...(deps.jobObserver === undefined ? {} : { jobObserver: deps.jobObserver }) })
  }))

  const ready = Promise.all(running.map(async ({ running }) => { await running.ready })).then(() => undefined)
  // Marked handled here: a caller that never asks (a test building the worker) is not crashed by it.
  ready.catch(() => undefined)

  let closing: Promise<void> | undefined
  return {
    ready,
    close () {
      closing ??= (async () => {
        // Near the deadline, jobs still running are handed back rather than cut off by the exit.
        const handBack = setTimeout(() => {
          logger.info('shutdown deadline near: handing back the work still running')
          for (const { name, running: feature } of running) {
            try { feature.handBack?.() } catch (error) { logger.error({ err: error, feature: name }, 'error while handing work back') }
          }
        }, handBackDelayMs(config.shutdown.deadlineMs)).unref()
        await closeInOrder([
          // Features are independent of each other: they close side by side, each on its own.
          async () => {
            await Promise.all(running.map(async ({ name, running }) => {
              try { await running.close() } catch (error) { logger.error({ err: error, feature: name }, 'error while closing the worker') }
            }))
          },
          () => { clearTimeout(handBack) },
          () => { for (const connection of connections) connection.disconnect() }
        ], (error) => { logger.error({ err: error }, 'error while closing the worker') })
      })()
      return closing
    }
  }
}
