import { DelayedError, type Job } from 'bullmq'
import type { FlowStepQueues } from '../src/queue/create-queues.ts'
import type { FlowStepJobData, PersonOutcome } from '../src/queue/payloads.ts'
import { syncPersonBatch, type BatchOutcome, type SyncPersonBatchDeps } from '../src/flow-step/sync-person-batch.ts'
import { flowCallbackJobId } from '../src/queue/job-ids.ts'
import { FLOW_CALLBACK_JOB_NAME } from '../src/queue/names.ts'
import { logSafeReason } from '../src/logging/log-safe-reason.ts'
import { PERSON_FIELD_MAPPINGS } from '../src/sync/person-field-mapping.ts'

export class PersonsLeftForRetryError extends Error {
  readonly code = 'PERSONS_LEFT_FOR_RETRY'
  constructor (count: number) {
    super(`${count} person(s) could not be decided yet (Dynamics or Marketo unavailable); retrying`)
    this.name = 'PersonsLeftForRetryError'
  }
}

/**
 * The names Dynamics quotes in its messages that are not a person's data: the flow step's columns
 * and tables. They stay in a logged reason (src/logging/log-safe-reason.ts); every other quoted value goes.
 */
const DYNAMICS_NAMES = new Set([
  'lead', 'contact', 'leads', 'contacts',
  ...PERSON_FIELD_MAPPINGS.flatMap((m) => m.contact === null ? [m.lead] : [m.lead, m.contact])
])

/**
 * Flow-step job: sync the persons not settled by an earlier try, keep what was decided, and
 * either retry the undecided ones (BullMQ backoff) or, on the last try, report them as failed —
 * every person of an accepted invocation reaches Marketo's callback.
 *
 * `signal` is aborted when the worker's shutdown deadline is near (`Worker.cancelAllJobs`): the
 * batch starts no further create, and the job saves what it decided and moves itself back to the
 * queue with its lock token, so another worker takes it at once, with no try spent and no stall counted.
 * (BullMQ passes the signal only to a processor declaring three parameters.)
 */
export function createSyncPersonBatchProcessor (deps: SyncPersonBatchDeps & { queues: FlowStepQueues }) {
  return async function processSyncPersonBatch (job: Job<FlowStepJobData>, token?: string, signal?: AbortSignal): Promise<{ created: number, existed: number, failed: number }> {
    if (job.data.callbackQueued !== undefined) return job.data.callbackQueued
    // Every line this job writes names it, so an operator can follow one invocation through the logs.
    const logger = deps.logger.child({ queue: job.queueName, jobId: job.id })
    const settled = new Map((job.data.settledOutcomes ?? []).map((o) => [o.marketoId, o]))
    const remaining = job.data.persons.filter((p) => !settled.has(p.marketoId))
    const lastTry = job.attemptsMade + 1 >= (job.opts.attempts ?? 1)
    logger.debug({ invocationId: job.data.invocationId, persons: remaining.length, attemptsMade: job.attemptsMade }, 'flow-step job started')
    let outcomes: BatchOutcome[]
    try {
      outcomes = await syncPersonBatch(job.data.invocationId, remaining, { ...deps, logger }, signal)
    } catch (error) {
      // A look-up failed for the whole batch (Dynamics or Redis away). Retry; on the last try,
      // report every undecided person with the reason rather than let the job die silently.
      if (!lastTry) throw error
      logger.error({ err: error, invocationId: job.data.invocationId }, 'flow-step batch failed on its last try')
      outcomes = remaining.map((p) => ({
        marketoId: p.marketoId,
        kind: 'failed',
        errorCode: (error as { code?: string }).code ?? 'SYNC_FAILED',
        reason: `could not be synced after ${job.attemptsMade + 1} tries: ${(error as Error).message}`
      }))
    }
    const undecided = outcomes.filter((o) => o.retryable === true)
    if (signal?.aborted === true && token !== undefined && undecided.length > 0) {
      for (const { retryable, ...outcome } of outcomes) if (retryable !== true) settled.set(outcome.marketoId, outcome)
      await job.updateData({ ...job.data, settledOutcomes: [...settled.values()] })
      // Delayed until now rather than `moveToWait`: the delayed set's marker wakes the workers
      // blocked waiting for a job, where a prioritised job put back by `moveToWait` leaves them
      // asleep until their next poll. `moveToDelayed` spends no try (BullMQ's `skipAttempt`).
      await job.moveToDelayed(Date.now(), token)
      logger.info({ invocationId: job.data.invocationId, undecided: undecided.length }, 'flow-step job handed back to the queue: the worker is shutting down')
      throw new DelayedError()
    }
    logPersonFailures(logger, job.data.invocationId, outcomes, lastTry)
    for (const { retryable, ...outcome } of outcomes) {
      if (retryable !== true || lastTry) settled.set(outcome.marketoId, outcome)
    }
    if (undecided.length > 0 && !lastTry) {
      await job.updateData({ ...job.data, settledOutcomes: [...settled.values()] })
      throw new PersonsLeftForRetryError(undecided.length)
    }

    const ordered = await enqueueFlowCallback(deps.queues, job.data, settled)
    const counts = {
      created: ordered.filter((o) => o.kind === 'created').length,
      existed: ordered.filter((o) => o.kind === 'existed').length,
      failed: ordered.filter((o) => o.kind === 'failed').length
    }
    // The job record stays a day (its id keeps a re-sent invocation from queueing twice); the
    // persons' fields need not: the outcomes now live in the callback job, ids only.
    await job.updateData({ ...job.data, persons: job.data.persons.map(({ marketoId, syncAs }) => ({ marketoId, syncAs, fields: {} })), settledOutcomes: [], callbackQueued: counts })
    return counts
  }
}

/**
 * One line per person who failed in this try: the Marketo id, our error code (a Dynamics refusal
 * carries Dynamics' own, `DYNAMICS_0x80040203`) and the reason with any value Dynamics quoted taken
 * out (log-safe-reason.ts); the whole message reaches the person's activity log by the callback.
 */
function logPersonFailures (logger: SyncPersonBatchDeps['logger'], invocationId: string, outcomes: readonly BatchOutcome[], lastTry: boolean): void {
  for (const outcome of outcomes) {
    if (outcome.kind !== 'failed') continue
    const retrying = outcome.retryable === true && !lastTry
    logger[retrying ? 'info' : 'warn']({
      invocationId,
      marketoId: outcome.marketoId,
      errorCode: outcome.errorCode,
      reason: logSafeReason(outcome.reason ?? '', DYNAMICS_NAMES),
      retrying
    }, retrying ? 'person not synced yet; will retry' : 'person not synced')
  }
}

/**
 * Queues the invocation's callback: one outcome per person, in invocation order, each person once.
 * The job id makes it idempotent — a processor and a failure handler racing add it once.
 */
async function enqueueFlowCallback (queues: FlowStepQueues, data: FlowStepJobData, settled: ReadonlyMap<number, PersonOutcome>): Promise<PersonOutcome[]> {
  const ordered = [...new Set(data.persons.map((p) => p.marketoId))]
    .map((marketoId) => settled.get(marketoId))
    .filter((o) => o !== undefined)
  await queues.flowStepCallback.add(FLOW_CALLBACK_JOB_NAME, {
    invocationId: data.invocationId,
    munchkinId: data.munchkinId,
    callbackUrl: data.callbackUrl,
    sealedCallbackCredentials: data.sealedCallbackCredentials,
    outcomes: ordered
  }, { jobId: flowCallbackJobId(data.invocationId) })
  return ordered
}

/**
 * A flow-step job that failed for good without reaching its callback — its processor crashed on
 * every try, or BullMQ gave up on it after repeated stalls (killed workers) — still owes Marketo
 * each person's outcome: what earlier tries settled, and a failure with the reason for the rest.
 */
export async function reportAbandonedBatch (queues: FlowStepQueues, job: Job<FlowStepJobData>, error: Error): Promise<void> {
  // Its callback left before it failed (it died between queueing it and recording completion).
  if (job.data.callbackQueued !== undefined) return
  const settled = new Map((job.data.settledOutcomes ?? []).map((o) => [o.marketoId, o]))
  for (const person of job.data.persons) {
    if (!settled.has(person.marketoId)) {
      settled.set(person.marketoId, {
        marketoId: person.marketoId,
        kind: 'failed',
        errorCode: 'SYNC_ABANDONED',
        reason: `the sync was given up after ${job.attemptsMade} tries: ${error.message}`
      })
    }
  }
  await enqueueFlowCallback(queues, job.data, settled)
}
