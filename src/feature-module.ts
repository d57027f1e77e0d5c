import type { FastifyInstance } from 'fastify'
import type { Worker } from 'bullmq'
import type { RedisClient } from './queue/connections.ts'
import type { Logger } from 'pino'
import type { Config } from './config.ts'

/**
 * The API and the worker are composed from feature modules (today the flow step; next the
 * background sync): a new feature is a new module in the runtimes' lists (src/runtime/), not an
 * edit to another feature's wiring. A feature gets its own dependencies when it is constructed and
 * the process's shared ones (config, logger, Redis) when it is registered or started.
 */

export interface ApiContext {
  readonly config: Config
  readonly logger: Logger
  /** The API's own Redis connection (fail-fast policy, src/queue/connections.ts); the app closes it. */
  readonly redis: RedisClient
}

export interface ApiFeature {
  readonly name: string
  /** Registers the feature's route plugins, after the app's shared core (errors, docs, health). */
  register (app: FastifyInstance, context: ApiContext): Promise<void>
}

export interface WorkerContext {
  readonly config: Config
  readonly logger: Logger
  /** A worker-policy Redis connection (src/queue/connections.ts), watched and closed by the worker after every feature. */
  readonly connect: (name: string) => RedisClient
  /** Every Queue and Worker needs an `error` listener; this one says a lost Redis once per outage. */
  readonly onQueueError: (error: Error, queue: string) => void
  /** Counts each job's end and duration (src/metrics/job-metrics.ts); passed to logJobEvents with each Worker. */
  readonly jobObserver?: { observe (worker: Worker): void }
}

export interface RunningFeature {
  /**
   * Settles once the feature has really started; rejects when it cannot (the background sync's
   * field-mapping check found a mismatch). A feature that needs I/O before its first job (a
   * check against Marketo's and Dataverse's schemas) does it here, so `start` stays synchronous and
   * the worker still composes its features in one list. Absent: started when `start` returned.
   */
  readonly ready?: Promise<void>
  /** Stops taking work and waits for the work in hand; must not throw for an already-closed part. */
  close (): Promise<void>
  /**
   * Called once while `close` waits, when the shutdown deadline is near: the work still running is
   * stopped at its next safe point and handed back (a job to its queue, a feed's lease released),
   * so another worker takes it at once. Absent: the feature's work always ends in time.
   */
  handBack? (): void
}

export interface WorkerFeature {
  readonly name: string
  /** Creates the feature's processors, workers, movers and schedulers, started. */
  start (context: WorkerContext): RunningFeature
}

/** Runs close steps in order, each in its own try/catch so one failing does not leave the rest open. */
export async function closeInOrder (steps: ReadonlyArray<() => Promise<void> | void>, onError: (error: unknown) => void): Promise<void> {
  for (const step of steps) {
    try { await step() } catch (error) { onError(error) }
  }
}
