import type { Job, Queue } from 'bullmq'
import type { RedisClient } from '../queue/connections.ts'
import type { Logger } from 'pino'
import type { FlowStepJobData } from '../queue/payloads.ts'

/** Queues the callback of a flow-step job that failed for good (jobs/sync-person-batch.ts). */
export type ReportAbandonedJob = (job: Job<FlowStepJobData>, error: Error) => Promise<void>

export interface AbandonedJobReporterOptions {
  /** A worker-policy command connection (shared; the reporter does not close it). */
  readonly redis: RedisClient
  readonly flowStepQueue: Queue<FlowStepJobData>
  /** The sorted set of flow-step job ids whose callback was queued, scored by when. */
  readonly reportedKey: string
  readonly report: ReportAbandonedJob
  readonly logger: Logger
  /** How often the failed set is swept for jobs whose `failed` event no live process handled. */
  readonly sweepIntervalMs?: number
}

/**
 * How far back the sweep at start looks: as long as a completed callback job is kept
 * (src/queue/create-queues.ts), so a job reported before this reporter existed, or whose mark
 * was lost, is re-queued under a callback job id that still blocks it — never sent twice.
 */
const START_LOOKBACK_MS = 24 * 3600 * 1000
/** The periodic sweeps look back this far: well past a sweep interval plus clock skew between workers. */
const PERIODIC_LOOKBACK_MS = 15 * 60 * 1000
/** Marks outlive the failed jobs they are about (kept 7 days), then go. */
const MARK_KEPT_MS = 8 * 24 * 3600 * 1000
const PAGE = 500

/**
 * Makes "a flow-step job that failed for good still reaches Marketo's callback" durable.
 *
 * BullMQ records the failure (moves the job to the failed set) and only then emits `failed` in the
 * process that ran it; a listener there can die with the process or be cut short by a shutdown. So
 * the failed set itself is the to-do list: on start and every `sweepIntervalMs`, every failed
 * flow-step job not yet marked reported gets its callback queued (the callback job id makes that
 * idempotent), and is then marked in Redis. The `failed` event stays as the fast path; `close()`
 * waits for whatever reporting is in flight.
 */
export class AbandonedJobReporter {
  readonly #options: Required<AbandonedJobReporterOptions>
  readonly #inFlight = new Set<Promise<void>>()
  #timer: NodeJS.Timeout | undefined
  #closed = false
  /** One sweep at a time; fast-path reports in flight never hold a sweep back. */
  #sweeping = false

  constructor (options: AbandonedJobReporterOptions) {
    this.#options = { sweepIntervalMs: 60_000, ...options }
  }

  start (): void {
    if (this.#closed || this.#timer !== undefined) return
    this.#startSweep(START_LOOKBACK_MS)
    this.#timer = setInterval(() => { this.#startSweep(PERIODIC_LOOKBACK_MS) }, this.#options.sweepIntervalMs)
  }

  /** The fast path, from the worker's `failed` event for a job that failed for good. */
  reportFailed (job: Job<FlowStepJobData>, error: Error): void {
    if (this.#closed) return
    this.#track(this.#reportOne(job, error))
  }

  /** Stops sweeping and waits for reporting in flight. Idempotent. */
  async close (): Promise<void> {
    this.#closed = true
    clearInterval(this.#timer)
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight])
  }

  /** Resolves once the reporting in flight now is done (for tests and `close()`). */
  async settled (): Promise<void> {
    await Promise.allSettled([...this.#inFlight])
  }

  #startSweep (lookbackMs: number): void {
    if (this.#sweeping) return
    this.#sweeping = true
    this.#track(this.#sweep(lookbackMs).finally(() => { this.#sweeping = false }))
  }

  #track (work: Promise<void>): void {
    const tracked = work.catch((error: unknown) => {
      this.#options.logger.error({ err: error }, 'could not queue the callback of an abandoned flow-step job; the next sweep tries again')
    }).finally(() => { this.#inFlight.delete(tracked) })
    this.#inFlight.add(tracked)
  }

  async #reportOne (job: Job<FlowStepJobData>, error: Error): Promise<void> {
    const { redis, reportedKey, report } = this.#options
    if (job.id === undefined || await redis.zscore(reportedKey, job.id) !== null) return
    await report(job, error)
    await redis.zadd(reportedKey, Date.now(), job.id)
  }

  /**
   * Newest first: the failed set loses its oldest jobs to retention while it is read, which would
   * shift an ascending page past unread ones; jobs failing meanwhile only repeat a few (marked) ids.
   */
  async #sweep (lookbackMs: number): Promise<void> {
    const { redis, flowStepQueue, reportedKey, logger } = this.#options
    const since = Date.now() - lookbackMs
    let reported = 0
    for (let offset = 0; offset === 0 || !this.#closed; offset += PAGE) {
      const ids = await redis.zrevrangebyscore(flowStepQueue.keys.failed!, '+inf', since, 'LIMIT', offset, PAGE)
      if (ids.length === 0) break
      const marks = await redis.zmscore(reportedKey, ...ids)
      for (const [index, id] of ids.entries()) {
        if (marks[index] !== null) continue
        const job = await flowStepQueue.getJob(id)
        if (job === undefined || await job.getState() !== 'failed') continue
        await this.#reportOne(job, new Error(job.failedReason ?? 'failed for good'))
        reported++
      }
      if (ids.length < PAGE) break
    }
    await redis.zremrangebyscore(reportedKey, '-inf', Date.now() - MARK_KEPT_MS)
    if (reported > 0) logger.warn({ reported }, 'queued the callbacks of flow-step jobs that failed for good without them')
  }
}
