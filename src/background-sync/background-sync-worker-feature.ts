import { Queue, Worker, type Job } from 'bullmq'
import type { Logger } from 'pino'
import type { DataverseClient } from '../dynamics/dataverse-client.ts'
import { changeReadColumns } from '../dynamics/table-changes.ts'
import { closeInOrder, type WorkerFeature } from '../feature-module.ts'
import { RecordLinkStore } from '../links/record-link-store.ts'
import { logJobEvents } from '../queue/job-event-log.ts'
import { DYNAMICS_CHANGE_PASS_JOB_NAME, QUEUE, dynamicsChangeSchedulerId } from '../queue/names.ts'
import type { DynamicsChangePassJobData } from '../queue/payloads.ts'
import { queuePrefix } from '../queue/redis-keys.ts'
import { SYNC_TABLES, type FieldMapping, type SyncTable } from '../sync/field-mapping.ts'
import type { OptionSets } from '../sync/option-labels.ts'
import { readSyncFilterTables, readTableOptionSets, readTableStateStatus } from '../dynamics/attribute-metadata.ts'
import type { StateStatusOptions } from '../sync/state-status.ts'
import { fieldFingerprinter } from '../sync/field-fingerprint.ts'
import { CheckpointStore } from './checkpoints.ts'
import { FeedHandedBackError, FeedLeases } from './feed-lease.ts'
import { runDynamicsChangePass, type DynamicsChangePassOutcome } from './dynamics-change-pass.ts'
import { deliverDynamicsPage, type CarriedToDynamics, type DeliveryOutcome, type DynamicsToMarketoDeliveryDeps, type MarketoPersonWriter } from './dynamics-to-marketo-delivery.ts'
import { PairStateStore } from './pair-state-store.ts'
import { reportRefusedWrites, writePersonChanges, type MarketoChangeFeed } from './marketo-change-pass.ts'
import { currentPersonValues } from './parked-change-retry.ts'
import { startMarketoChangePasses } from './marketo-change-scheduler.ts'
import { ParkedChangeStore } from './parked-changes.ts'
import { DeletedRecordSweep, isExpiredDeltaReset } from './deleted-record-sweep.ts'
import { SyncFailureActivityLog, type CustomActivityWriter } from '../marketo/sync-failure-activity.ts'
import type { SyncPassObserver } from '../metrics/sync-progress.ts'
import { fieldFingerprintKey } from './parked-change-retry-deps.ts'
import { SyncPauses } from './sync-pauses.ts'

export interface BackgroundSyncWorkerDeps {
  readonly dataverse: DataverseClient
  readonly marketo: MarketoPersonWriter & MarketoChangeFeed & CustomActivityWriter
  /**
   * The field mapping, read and checked against Marketo's and Dataverse's schemas (issue 12 §4,
   * src/background-sync/check-field-mapping.ts). Awaited before any scheduler or processor starts;
   * a rejection is the feature's start-up failure, and the mapping it resolves to is the one the
   * passes use.
   */
  readonly fieldMapping: () => Promise<FieldMapping>
  /** The service's Dataverse user (WhoAmI, dataverse-web-api-and-msal.md): its writes coming back are echoes. */
  readonly whoAmI: () => Promise<string>
  /** Page size of a change read; Dataverse's default is 5,000. */
  readonly pageSize?: number
  /** Told of every pass's outcome, both directions (src/metrics/sync-progress.ts): records synced and the sync lag. */
  readonly passObserver?: SyncPassObserver
}

/**
 * A pass reads one page; one job reads on until the table has caught up, at most this many pages,
 * so a first sync of a large table yields the worker between jobs instead of holding it for hours.
 */
const MAX_PAGES_PER_JOB = 20

/**
 * The background sync's side of a worker process, Dynamics → Marketo only so far (issue 12 §1):
 * a BullMQ job scheduler per table adds a change-pass job every poll interval. `upsertJobScheduler`
 * is idempotent by scheduler id, so every worker may call it at start and there is still one
 * schedule per table (issue 12 §10: "safe with many workers"). BullMQ hands each job to one worker,
 * but a scheduler adds the next job when the current one becomes active, so a pass that outlasts
 * the interval overlaps the next one of its table, in this worker or another: each pass takes its
 * table's lease in Redis (feed-lease.ts), and one that finds it held ends at once as skipped. The
 * checkpoint's version still refuses a runner that raced on the same page (a lease lost mid-pass).
 */
export function backgroundSyncWorkerFeature (deps: BackgroundSyncWorkerDeps): WorkerFeature {
  return {
    name: 'background-sync',
    start ({ config, logger, connect, onQueueError, jobObserver }) {
      const prefix = config.redis.keyPrefix
      const commands = connect('mds-worker-sync-commands')
      const checkpoints = new CheckpointStore(commands, prefix)
      // The lease outlives a dead holder as long as BullMQ's job lock does: its stalled job is taken
      // over after about that long too.
      const leases = new FeedLeases(commands, prefix, { ttlMs: config.worker.lockDurationMs })
      const pairs = new PairStateStore(commands, prefix)
      const links = new RecordLinkStore(commands, prefix)
      const parked = new ParkedChangeStore(commands, prefix)
      // One per worker: the activity type is looked up once, on the first refusal.
      const failureLog = new SyncFailureActivityLog(deps.marketo)
      const fingerprintKey = fieldFingerprintKey(config)
      const pauses = new SyncPauses(commands, prefix)
      const log = logger.child({ feature: 'background-sync' })
      const deletedSweep = new DeletedRecordSweep({ redis: commands, prefix, dataverse: deps.dataverse, checkpoints, leases, intervalMs: config.sync.deletedRecordSweepIntervalMs, logger: log })
      let serviceUser: Promise<string> | undefined
      const jobLogger = (job: Job): Logger => log.child({ queue: job.queueName, jobId: job.id })

      async function serviceUserId (jobLog: Logger): Promise<string | undefined> {
        serviceUser ??= deps.whoAmI()
        // Asked again on the next pass when it failed: the label 'echo' waits, the sync does not.
        return await serviceUser.catch((error: unknown) => { serviceUser = undefined; jobLog.warn({ err: error }, 'WhoAmI failed'); return undefined })
      }

      interface WriteContext {
        readonly optionSets: Partial<Record<SyncTable, OptionSets>>
        readonly stateStatus: Partial<Record<SyncTable, StateStatusOptions>>
      }

      /**
       * New pairs' fields the merge gives to Dynamics (dynamics-to-marketo-delivery.ts `carryToDynamics`):
       * written through the Marketo → Dynamics path, as if Marketo had just reported the person's values,
       * so its merge, option labels, state/status pairing and parking apply. Refusals are parked and
       * reach the person's activity log, as that direction's do.
       */
      async function carryToDynamics (table: SyncTable, items: readonly CarriedToDynamics[], mapping: FieldMapping, context: WriteContext, log: Logger): Promise<void> {
        const at = new Date()
        const outcome = await writePersonChanges({
          dataverse: deps.dataverse,
          pairs,
          mapping,
          fingerprinter: (pairId) => fieldFingerprinter(fingerprintKey, pairId),
          logger: log,
          optionSets: context.optionSets,
          stateStatus: context.stateStatus
        }, table, items.map((item) => ({ recordId: item.recordId, person: currentPersonValues(item.personId, item.fields, item.person, at) })))
        await reportRefusedWrites({ failureLog, logger: log, parked }, outcome.refused, at)
        if (outcome.written.length > 0) log.info({ table, written: outcome.written.length }, 'new pairs\' Marketo values written to Dynamics')
      }

      async function runPasses (job: Job<DynamicsChangePassJobData>, mapping: FieldMapping, syncFilterTables: ReadonlySet<SyncTable>, context: WriteContext): Promise<DynamicsChangePassOutcome[]> {
        const table = job.data.table
        // Every line of the job names it, as the flow step's do (issue 13 §7): an operator goes from a
        // line to the job in the queue dashboard, and from a failed job to its lines.
        const log = jobLogger(job)
        // Paused by an operator (admin API): read nothing, advance nothing; the cursor waits for the resume.
        if (await pauses.isPaused('dynamics-to-marketo')) return []
        const userId = await serviceUserId(log)
        // One set of delivery dependencies for a table's pages and its deleted-record sweep: one behaviour.
        const deliveryDeps = (forTable: SyncTable): DynamicsToMarketoDeliveryDeps => ({
          table: forTable,
          mapping,
          marketo: deps.marketo,
          pairs,
          links,
          fingerprinter: (pairId) => fieldFingerprinter(fingerprintKey, pairId),
          serviceUserId: userId,
          parked,
          carryToDynamics: async (forTable, items) => { await carryToDynamics(forTable, items, mapping, context, log) },
          logger: log
        })
        const outcomes: DynamicsChangePassOutcome[] = []
        try {
          for (let page = 0; page < MAX_PAGES_PER_JOB; page++) {
            const startedAt = Date.now()
            let delivered: DeliveryOutcome | undefined
            const outcome = await runDynamicsChangePass({
              client: deps.dataverse,
              checkpoints,
              leases,
              table,
              columns: changeReadColumns(mapping, table, { syncFilter: syncFilterTables.has(table) }),
              ...(deps.pageSize === undefined ? {} : { pageSize: deps.pageSize }),
              deliver: async (changes) => {
                delivered = await deliverDynamicsPage(changes, deliveryDeps(table))
                if (changes.upserted.length + changes.deletedIds.length > 0) log.info({ table, ...delivered }, 'Dynamics changes delivered to Marketo')
              }
            })
            outcomes.push(outcome)
            // Noted at once, not at the job's end: a worker killed during the full read must not lose it.
            if (isExpiredDeltaReset(outcome)) await deletedSweep.awaitFullRead(table)
            // Metrics must never fail a pass whose changes are already delivered.
            await deps.passObserver?.dynamicsPass(table, startedAt, outcome, delivered).catch((error: unknown) => { log.debug({ err: error }, 'pass metrics not recorded') })
            if (outcome.kind === 'skipped') log.debug({ table }, 'another change pass of this table is running: skipped')
            if (outcome.kind === 'reset' && outcome.reason === 'change-tracking-off') log.warn({ table }, 'change tracking is off for this table: its changes are read by modifiedon from now on, and its deletes found only by the periodic deleted-record sweep')
            // An expired delta token (Dataverse keeps them 7 days, §2) means a full read of the table: ops should know why it runs.
            if (outcome.kind === 'reset' && outcome.reason !== 'change-tracking-off') log.warn({ table, reason: outcome.reason }, 'the change cursor was dropped: the table is read in full again')
            if (outcome.kind !== 'reset' && (outcome.kind !== 'advanced' || outcome.caughtUp)) break
          }
        } catch (error) {
          if (!(error instanceof FeedHandedBackError)) throw error
          // Shutdown: the pass stopped before delivering and freed the table's lease; its page is
          // read again by the next pass, in another worker. The sweep waits for that pass too.
          log.info({ table, pages: outcomes.length }, 'change pass handed back at shutdown: the table\'s lease is free for another worker')
          return outcomes
        }
        // Deletes change tracking cannot show (deleted-record-sweep.ts): one bounded step after the
        // full read that followed an expired delta link, or periodically on a modifiedon table. A
        // missing record goes through the delivery as a $deletedEntity would. A failed step is
        // logged and taken again by the next job; the pass's own outcome stands.
        await deletedSweep.afterPasses(table, outcomes.at(-1), async (sweptTable, deletedIds) => await deliverDynamicsPage(
          { kind: 'page', upserted: [], deletedIds, cursor: '', caughtUp: true },
          deliveryDeps(sweptTable)
        )).catch((error: unknown) => {
          if (error instanceof FeedHandedBackError) { log.info({ table }, 'deleted-record sweep step handed back at shutdown'); return }
          log.warn({ table, code: (error as { code?: unknown }).code, name: (error as Error).name }, 'a deleted-record sweep step failed: the next pass takes it again')
        })
        return outcomes
      }

      // The check is I/O and `start` is synchronous (the worker composes its features in one list):
      // everything that could run a pass waits on it, and its outcome is the feature's `ready`.
      // A worker closed while the check ran starts nothing afterwards.
      let closing = false
      const started = (async () => {
        const mapping = await deps.fieldMapping()
        // Marketo sends an option set's label; Dynamics takes its value: the options are read once.
        const optionSets = Object.fromEntries(await Promise.all(SYNC_TABLES.map(async (table) =>
          [table, await readTableOptionSets(deps.dataverse, table)] as const)))
        // …and how its states and statuses pair, so one written alone from Marketo gets its partner.
        const stateStatus: Partial<Record<SyncTable, StateStatusOptions>> = {}
        for (const [table, options] of await Promise.all(SYNC_TABLES.map(async (table) => [table, await readTableStateStatus(deps.dataverse, table)] as const))) {
          if (options !== undefined) stateStatus[table] = options
        }
        // The sync filter is a column an org may not have: a table without it syncs every record (§5).
        const syncFilterTables = new Set(await readSyncFilterTables(deps.dataverse))
        log.info({ syncFilterTables: [...syncFilterTables] }, 'tables with the sync filter new_synctomkto')
        return closing ? undefined : startPasses(mapping, optionSets, syncFilterTables, stateStatus)
      })()

      function startPasses (mapping: FieldMapping, optionSets: Partial<Record<SyncTable, OptionSets>>, syncFilterTables: ReadonlySet<SyncTable>, stateStatus: Partial<Record<SyncTable, StateStatusOptions>>) {
        const queue = new Queue<DynamicsChangePassJobData>(QUEUE.syncDynamicsChanges, {
          connection: commands,
          prefix: queuePrefix(prefix, QUEUE.syncDynamicsChanges),
          // A pass is repeated by its scheduler anyway: a failed one is not retried, only kept for ops.
          defaultJobOptions: { removeOnComplete: { count: 100 }, removeOnFail: { age: 24 * 3600, count: 1_000 } }
        })
        queue.on('error', (error) => { onQueueError(error, QUEUE.syncDynamicsChanges) })
        const scheduled = Promise.all(SYNC_TABLES.map(async (table) => {
          await queue.upsertJobScheduler(dynamicsChangeSchedulerId(table), { every: config.sync.dynamicsPollIntervalMs }, {
            name: DYNAMICS_CHANGE_PASS_JOB_NAME,
            data: { table }
          })
        })).catch((error: unknown) => { log.error({ err: error }, 'could not schedule the Dynamics change passes') })

        const worker = new Worker<DynamicsChangePassJobData>(QUEUE.syncDynamicsChanges, async (job) => await runPasses(job, mapping, syncFilterTables, { optionSets, stateStatus }), {
          connection: connect('mds-worker-sync-dynamics'),
          prefix: queuePrefix(prefix, QUEUE.syncDynamicsChanges),
          // Two tables may run together; two passes of one table may be handed to this worker too
          // (see above), and the table's lease skips the second.
          concurrency: SYNC_TABLES.length,
          lockDuration: config.worker.lockDurationMs,
          stalledInterval: config.worker.stalledIntervalMs
        })
        logJobEvents(worker, logger, onQueueError, jobObserver)
        const marketoPasses = startMarketoChangePasses({ config, logger, connect, onQueueError, ...(jobObserver === undefined ? {} : { jobObserver }) }, { ...(deps.passObserver === undefined ? {} : { passObserver: deps.passObserver }), marketo: deps.marketo, dataverse: deps.dataverse, checkpoints, leases, links, pairs, mapping, optionSets, stateStatus, fingerprinter: (pairId) => fieldFingerprinter(fingerprintKey, pairId), parked, failureLog })
        return { scheduled, worker, queue, marketoPasses }
      }

      return {
        ready: started.then(() => undefined),
        // Shutdown deadline near: the passes of both directions stop before delivering and free
        // their feeds' leases (feed-lease.ts), so another worker's next pass runs at once.
        handBack () {
          leases.handBack()
          void started.then((parts) => { parts?.marketoPasses.handBack?.() }, () => undefined)
        },
        async close () {
          closing = true
          // A feature whose start-up check failed started nothing, so there is nothing to close.
          const parts = await started.catch(() => undefined)
          if (parts === undefined) return
          const { scheduled, worker, queue, marketoPasses } = parts
          await closeInOrder([
            async () => { await scheduled },
            async () => { await worker.close() },
            async () => { await queue.close() },
            async () => { await marketoPasses.close() }
          ], (error) => { logger.error({ err: error, feature: 'background-sync' }, 'error while closing the worker') })
        }
      }
    }
  }
}
