import { Queue, Worker, type Job } from 'bullmq'
import { closeInOrder, type RunningFeature, type WorkerContext } from '../feature-module.ts'
import { logJobEvents } from '../queue/job-event-log.ts'
import { MARKETO_CHANGE_PASS_JOB_NAME, MARKETO_CHANGE_SCHEDULER_ID, QUEUE } from '../queue/names.ts'
import type { MarketoChangePassJobData } from '../queue/payloads.ts'
import { queuePrefix } from '../queue/redis-keys.ts'
import { runMarketoChangePass, type MarketoChangePassDeps, type MarketoChangePassOutcome } from './marketo-change-pass.ts'

/**
 * A pass reads one page (up to 300 activities); one job reads on while Marketo says more is ready,
 * at most this many pages, so a burst of changes yields the worker between jobs.
 */
const MAX_PAGES_PER_JOB = 10

/**
 * The Marketo → Dynamics side of the background sync's worker (issue 12 §2, §10): one BullMQ job
 * scheduler adds a lead-change pass every SYNC_MARKETO_POLL_INTERVAL_MS. One feed serves leads and
 * contacts alike (Marketo has one person feed), so one scheduler. A scheduler adds the next job when
 * the current one becomes active, so a slow pass can overlap the next, here or in another worker:
 * the feed's lease (feed-lease.ts) lets one of them run and skips the other, and the checkpoint's
 * version refuses a second runner that raced on the same page anyway.
 * `upsertJobScheduler` is idempotent by id, so every worker may call it at start.
 */
export function startMarketoChangePasses (
  context: WorkerContext,
  deps: Omit<MarketoChangePassDeps, 'logger'>
): RunningFeature {
  const { config, logger, connect, onQueueError } = context
  const prefix = config.redis.keyPrefix
  const log = logger.child({ feature: 'background-sync', direction: 'marketo-to-dynamics' })

  async function runPasses (_job: Job<MarketoChangePassJobData>): Promise<MarketoChangePassOutcome[]> {
    const outcomes: MarketoChangePassOutcome[] = []
    for (let page = 0; page < MAX_PAGES_PER_JOB; page++) {
      const outcome = await runMarketoChangePass({ ...deps, logger: log })
      outcomes.push(outcome)
      if (outcome.kind === 'skipped') { log.debug('another Marketo change pass is running: skipped'); break }
      if (outcome.persons > 0) {
        const { refused, ...counts } = outcome
        log.info({ ...counts, refused: refused.length }, 'Marketo changes delivered to Dynamics')
      }
      if (outcome.caughtUp) break
    }
    return outcomes
  }

  const queue = new Queue<MarketoChangePassJobData>(QUEUE.syncMarketoChanges, {
    connection: connect('mds-worker-sync-marketo-commands'),
    prefix: queuePrefix(prefix, QUEUE.syncMarketoChanges),
    // A pass is repeated by its scheduler anyway: a failed one is not retried, only kept for ops.
    defaultJobOptions: { removeOnComplete: { count: 100 }, removeOnFail: { age: 24 * 3600, count: 1_000 } }
  })
  queue.on('error', (error) => { onQueueError(error, QUEUE.syncMarketoChanges) })
  const scheduled = queue.upsertJobScheduler(MARKETO_CHANGE_SCHEDULER_ID, { every: config.sync.marketoPollIntervalMs }, {
    name: MARKETO_CHANGE_PASS_JOB_NAME,
    data: { feed: 'person' }
  }).catch((error: unknown) => { log.error({ err: error }, 'could not schedule the Marketo change passes') })

  const worker = new Worker<MarketoChangePassJobData>(QUEUE.syncMarketoChanges, runPasses, {
    connection: connect('mds-worker-sync-marketo'),
    prefix: queuePrefix(prefix, QUEUE.syncMarketoChanges),
    // One feed: a second concurrent pass here would only be skipped by the feed's lease.
    concurrency: 1,
    lockDuration: config.worker.lockDurationMs,
    stalledInterval: config.worker.stalledIntervalMs
  })
  logJobEvents(worker, logger, onQueueError)

  return {
    async close () {
      await closeInOrder([
        async () => { await scheduled },
        async () => { await worker.close() },
        async () => { await queue.close() }
      ], (error) => { logger.error({ err: error, feature: 'background-sync' }, 'error while closing the Marketo change passes') })
    }
  }
}
