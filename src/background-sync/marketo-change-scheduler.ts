import { Queue, Worker, type Job } from 'bullmq'
import { closeInOrder, type RunningFeature, type WorkerContext } from '../feature-module.ts'
import { logJobEvents } from '../queue/job-event-log.ts'
import { MARKETO_CHANGE_PASS_JOB_NAME, MARKETO_CHANGE_SCHEDULER_ID, QUEUE } from '../queue/names.ts'
import type { MarketoChangePassJobData } from '../queue/payloads.ts'
import { queuePrefix } from '../queue/redis-keys.ts'
import { MarketoCallBudget } from '../marketo/marketo-call-budget.ts'
import { MarketoBudgetSpentError, MarketoQuotaExhaustedError } from '../marketo/marketo-errors.ts'
import { MARKETO_CHECKPOINT, runMarketoChangePass, type MarketoChangePassDeps, type MarketoChangePassOutcome } from './marketo-change-pass.ts'
import { decideNextMarketoPoll, type LastMarketoPass } from './marketo-poll-pace.ts'
import { MarketoPollSchedule } from './marketo-poll-schedule.ts'
import type { SyncPassObserver } from '../metrics/sync-progress.ts'
import { SyncPauses } from './sync-pauses.ts'
import { FeedHandedBackError } from './feed-lease.ts'
import type { Logger } from 'pino'

/**
 * A pass reads one page (up to 300 activities); one job reads on while Marketo says more is ready,
 * at most this many pages, so a burst of changes yields the worker between jobs.
 */
const MAX_PAGES_PER_JOB = 10

/** What a tick did: read the feed, or ended at once because the next poll is not due yet. */
export type MarketoPollTickOutcome =
  | { readonly kind: 'polled', readonly outcomes: MarketoChangePassOutcome[] }
  | { readonly kind: 'not-due', readonly dueAtMs: number }
  | { readonly kind: 'paused' }
  /** The worker is shutting down: the pass stopped before writing its page (feed-lease.ts). */
  | { readonly kind: 'handed-back', readonly outcomes: MarketoChangePassOutcome[] }

/** One page of the feed is one Get Lead Changes call (marketo-rest-and-ssfs.md §2.6); identity calls are free (§2.1). */
const CALLS_PER_FEED_PAGE = 1

/**
 * The Marketo → Dynamics side of the background sync's worker (issue 12 §2, §10, §11): one BullMQ job
 * scheduler ticks every SYNC_MARKETO_POLL_INTERVAL_MS, the fastest pace. One feed serves leads and
 * contacts alike (Marketo has one person feed), so one scheduler. A scheduler adds the next job when
 * the current one becomes active, so a slow pass can overlap the next, here or in another worker:
 * the feed's lease (feed-lease.ts) lets one of them run and skips the other, and the checkpoint's
 * version refuses a second runner that raced on the same page anyway.
 * `upsertJobScheduler` is idempotent by id, so every worker may call it at start.
 *
 * The pace adapts to the Marketo budget (marketo-poll-pace.ts): a tick reads the feed only once the
 * due time kept in Redis (marketo-poll-schedule.ts) has come; a tick before it ends at once, having
 * cost two Redis reads and no Marketo call. The pass that ran sets the next due time from its
 * outcome and what the budget leaves. Why ticks and a due time rather than rescheduling:
 * - the schedule stays one fixed `upsertJobScheduler`, which every worker may repeat at start
 *   unchanged; a pass changing `every` would race other workers' start-ups, and each upsert moves
 *   the next run;
 * - a delayed job per poll is lost when the worker that should add the next one dies in between,
 *   and polling would stop; a tick that finds the due time passed just polls;
 * - the due time is one value every worker reads, on Redis's clock, so workers whose clocks
 *   disagree still poll once per due time, and the feed's lease still keeps it to one pass.
 * The cost is two Redis reads per tick (17,280 ticks a day at the 5 s default), nothing to Marketo.
 */
export function startMarketoChangePasses (
  context: WorkerContext,
  deps: Omit<MarketoChangePassDeps, 'logger'> & { readonly passObserver?: SyncPassObserver }
): RunningFeature {
  const { config, logger, connect, onQueueError, jobObserver } = context
  const prefix = config.redis.keyPrefix
  const feedLog = logger.child({ feature: 'background-sync', direction: 'marketo-to-dynamics' })

  /** `outcomes` is filled as pages are read, so a job that fails after some still counts their calls. */
  async function runPasses (outcomes: MarketoChangePassOutcome[], log: Logger): Promise<MarketoChangePassOutcome[]> {
    for (let page = 0; page < MAX_PAGES_PER_JOB; page++) {
      const startedAt = Date.now()
      const outcome = await runMarketoChangePass({ ...deps, logger: log })
      outcomes.push(outcome)
      // Metrics must never fail a pass whose changes are already written.
      await deps.passObserver?.marketoPass(startedAt, outcome).catch((error: unknown) => { log.debug({ err: error }, 'pass metrics not recorded') })
      if (outcome.kind === 'skipped') { log.debug('another Marketo change pass is running: skipped'); break }
      if (outcome.persons > 0) {
        const { refused, ...counts } = outcome
        log.info({ ...counts, refused: refused.length }, 'Marketo changes delivered to Dynamics')
      }
      if (outcome.caughtUp) break
    }
    return outcomes
  }

  const commands = connect('mds-worker-sync-marketo-commands')
  // A reader of the shared budget (nothing is charged here); the calls themselves go through the client's.
  const budget = new MarketoCallBudget(commands, { keyPrefix: prefix, dailyBudget: config.marketo.callBudget.dailyCalls })
  const schedule = new MarketoPollSchedule(commands, prefix, MARKETO_CHECKPOINT)
  const pauses = new SyncPauses(commands, prefix)
  const floorMs = config.sync.marketoPollIntervalMs
  const ceilingMs = config.sync.marketoPollMaxIntervalMs

  async function runPacedPasses (job: Job<MarketoChangePassJobData>): Promise<MarketoPollTickOutcome> {
    // Every line of the job names it (issue 13 §7), the pass's own and its writes' included.
    const log = feedLog.child({ queue: job.queueName, jobId: job.id })
    // Paused by an operator (admin API): no feed read, no token advanced, the pace left as it was.
    if (await pauses.isPaused('marketo-to-dynamics')) return { kind: 'paused' }
    const before = await budget.today()
    const state = await schedule.load(before.quotaDay)
    // Ticks come every floor interval, give or take the queue's latency: a due time less than half
    // a tick away is met by this tick rather than pushed a whole tick later.
    if (state.dueAtMs !== undefined && before.now + floorMs / 2 < state.dueAtMs) return { kind: 'not-due', dueAtMs: state.dueAtMs }

    const outcomes: MarketoChangePassOutcome[] = []
    let failure: unknown
    try {
      await runPasses(outcomes, log)
    } catch (error) {
      failure = error
    }
    // Another worker's pass held the feed: that pass sets the next due time.
    if (failure === undefined && outcomes[0]?.kind === 'skipped') return { kind: 'polled', outcomes }

    const pages = outcomes.filter((outcome) => outcome.kind === 'advanced')
    const quotaSpent = failure instanceof MarketoQuotaExhaustedError || failure instanceof MarketoBudgetSpentError
    const lastPass: LastMarketoPass = quotaSpent
      ? { kind: 'quota-spent' }
      // Only changes the sync did not make itself speed polling up: each of our Dynamics → Marketo
      // writes comes back through the feed as a change made through the API (issue 12 §6), and
      // counting those would spend a burst of fast polls on every edit made in Dynamics.
      : pages.some((page) => page.changedOutsideSync > 0 || !page.caughtUp) ? { kind: 'changes', pages: pages.length } : { kind: 'idle' }
    // A pass that failed otherwise is paced as idle (a Dynamics outage is not retried at the floor,
    // each try costing a feed read) and counted as the one read it may have made; a refused call
    // (607, our budget) was not charged.
    const calls = (pages.length + (failure === undefined || quotaSpent ? 0 : 1)) * CALLS_PER_FEED_PAGE
    const after = await budget.today()
    const pace = decideNextMarketoPoll({
      remainingCalls: after.remaining,
      dailyBudget: config.marketo.callBudget.dailyCalls,
      pollCallsToday: (after.quotaDay === before.quotaDay ? state.pollCallsToday : 0) + calls,
      msUntilReset: after.resetsAt - before.now,
      callsPerIdlePoll: CALLS_PER_FEED_PAGE,
      lastPass,
      ...(state.delayMs === undefined ? {} : { previousDelayMs: state.delayMs }),
      floorMs,
      ceilingMs
    })
    // From this tick's start, so a delay of one floor interval is met by the next tick.
    await schedule.save(after.quotaDay, { dueAtMs: before.now + pace.delayMs, delayMs: pace.delayMs, calls })
    log.debug({ pace: pace.pace, delayMs: pace.delayMs, remaining: after.remaining }, 'next Marketo poll')
    if (failure instanceof FeedHandedBackError) {
      // Shutdown: the pass stopped before writing and freed the feed's lease; its page is read again
      // by the next tick, in another worker. Not a failure of the job.
      log.info({ pages: pages.length }, 'Marketo change pass handed back at shutdown: the feed\'s lease is free for another worker')
      return { kind: 'handed-back', outcomes }
    }
    if (failure !== undefined) throw failure
    return { kind: 'polled', outcomes }
  }

  const queue = new Queue<MarketoChangePassJobData>(QUEUE.syncMarketoChanges, {
    connection: commands,
    prefix: queuePrefix(prefix, QUEUE.syncMarketoChanges),
    // A pass is repeated by its scheduler anyway: a failed one is not retried, only kept for ops.
    defaultJobOptions: { removeOnComplete: { count: 100 }, removeOnFail: { age: 24 * 3600, count: 1_000 } }
  })
  queue.on('error', (error) => { onQueueError(error, QUEUE.syncMarketoChanges) })
  const scheduled = queue.upsertJobScheduler(MARKETO_CHANGE_SCHEDULER_ID, { every: config.sync.marketoPollIntervalMs }, {
    name: MARKETO_CHANGE_PASS_JOB_NAME,
    data: { feed: 'person' }
  }).catch((error: unknown) => { feedLog.error({ err: error }, 'could not schedule the Marketo change passes') })

  const worker = new Worker<MarketoChangePassJobData>(QUEUE.syncMarketoChanges, runPacedPasses, {
    connection: connect('mds-worker-sync-marketo'),
    prefix: queuePrefix(prefix, QUEUE.syncMarketoChanges),
    // One feed: a second concurrent pass here would only be skipped by the feed's lease.
    concurrency: 1,
    lockDuration: config.worker.lockDurationMs,
    stalledInterval: config.worker.stalledIntervalMs
  })
  logJobEvents(worker, logger, onQueueError, jobObserver)

  return {
    // Shutdown deadline near: the running pass stops before writing and frees the feed's lease.
    handBack () { deps.leases.handBack() },
    async close () {
      await closeInOrder([
        async () => { await scheduled },
        async () => { await worker.close() },
        async () => { await queue.close() }
      ], (error) => { logger.error({ err: error, feature: 'background-sync' }, 'error while closing the Marketo change passes') })
    }
  }
}
