import type { Logger } from 'pino'
import type { Config } from '../config.ts'
import { buildWorker, type RunningWorker } from '../build-worker.ts'
import { ConfigError } from '../errors.ts'
import { createWorkerRedisConnection } from '../queue/connections.ts'
import { flowStepWorkerFeature } from '../flow-step/flow-step-worker-feature.ts'
import { backgroundSyncWorkerFeature } from '../background-sync/background-sync-worker-feature.ts'
import { checkFieldMappingAtStartup } from '../background-sync/check-field-mapping.ts'
import type { DataverseClient } from '../dynamics/dataverse-client.ts'
import type { MarketoRestClient } from '../marketo/marketo-rest-client.ts'
import { FieldMappingError, type FieldMapping } from '../sync/field-mapping.ts'
import { FieldMappingMismatchError } from '../sync/field-mapping-check.ts'
import { createCallbackCredentialsBox, createDataverseClient, createMarketoCallBudget, createMarketoRestClient } from './service-clients.ts'
import type { FastifyInstance } from 'fastify'
import { Queue } from 'bullmq'
import { Registry } from 'prom-client'
import { createServiceMetrics } from '../metrics/service-metrics.ts'
import { outsideCallMetrics } from '../metrics/outside-calls.ts'
import { jobMetrics } from '../metrics/job-metrics.ts'
import { countingThroughput, SyncThroughput } from '../admin/status-page-throughput.ts'
import { SyncProgress } from '../metrics/sync-progress.ts'
import { MetricsLeader } from '../metrics/metrics-leader.ts'
import { ClusterGauges } from '../metrics/cluster-gauges.ts'
import { metricsExposition } from '../metrics/metrics-exposition.ts'
import { cachedCheck, DependencyCheckFailedError, type DependencyCheck } from '../metrics/readiness.ts'
import { MARKETO_CHANGE_SCHEDULER_ID, QUEUE, dynamicsChangeSchedulerId } from '../queue/names.ts'
import { SYNC_TABLES } from '../sync/field-mapping.ts'
import { buildOpsServer } from './ops-server.ts'

/**
 * With the background sync on, a Marketo call refused with 606 (rate) or 615 (concurrency) — the
 * customer's other integrations spending the same instance limits — is tried again after about
 * 1, 2, 4 and 8 s (jittered), Adobe's advice to back off exponentially (marketo-rest-and-ssfs.md
 * §2.4 [BP]); the shared budget keeps our own processes under the limits, so these are rare.
 */
const MARKETO_RATE_LIMIT_RETRIES = 4
const MARKETO_RATE_LIMIT_BACKOFF_MS = 1_000

/**
 * A worker process's parts wired from config; `src/worker.ts` runs it (and awaits `ready`), tests
 * build the same.
 *
 * The Marketo call budget (issue 12 §11) is the worker's only when BACKGROUND_SYNC=on: then every
 * Marketo REST call the worker makes — the sync's, the flow step's reads, the start-up describe —
 * takes a slot of the one budget in Redis, because the instance's limits are the customer's,
 * whoever spends them. The API process needs none: it calls Dataverse (the Assign To picklist),
 * never Marketo's REST API. With the sync off the worker is as it was.
 */
export interface WorkerRuntime extends RunningWorker {
  /** The ops server (`/metrics`, health) for OPS_HOST:OPS_PORT; `src/worker.ts` listens on it. Closed by `close`. */
  readonly ops: Promise<FastifyInstance>
}

/** How long the metrics lease outlives its holder: a dead worker's gauges move to another within this. */
const METRICS_LEASE_TTL_MS = 15_000

export function buildWorkerRuntime (config: Config, logger: Logger): WorkerRuntime {
  const connect = (name: string) => createWorkerRedisConnection(config.redis.url, name, config.redis)
  // A registry per process, passed in: no global default registry (src/metrics/service-metrics.ts).
  const registry = new Registry()
  const metrics = createServiceMetrics(registry, 'worker')
  const observer = outsideCallMetrics(metrics)
  const metricsConnection = connect('mds-worker-metrics')
  // Dataverse's concurrency limit is per user, and every worker is the same user (issue 12 §11).
  const dataverseLimitConnection = connect('mds-worker-dataverse-limit')
  const dataverse = createDataverseClient(config, logger, dataverseLimitConnection, observer)
  const budgetConnection = config.sync.enabled ? connect('mds-worker-marketo-budget') : undefined
  const marketo = budgetConnection === undefined
    ? createMarketoRestClient(config, { observer })
    : createMarketoRestClient(config, {
      observer,
      callBudget: createMarketoCallBudget(config, budgetConnection),
      rateLimitRetries: MARKETO_RATE_LIMIT_RETRIES,
      rateLimitBackoffMs: MARKETO_RATE_LIMIT_BACKOFF_MS,
      logger
    })
  const leader = new MetricsLeader(metricsConnection, config.redis.keyPrefix, { ttlMs: METRICS_LEASE_TTL_MS })
  const clusterGauges = new ClusterGauges({ redis: metricsConnection, keyPrefix: config.redis.keyPrefix, leader, dailyCallBudget: config.marketo.callBudget.dailyCalls })
  const readinessChecks: DependencyCheck[] = [
    cachedCheck({ name: 'dynamics-token', check: async () => { await dataverse.checkAccessToken() } }),
    cachedCheck({ name: 'marketo-token', check: async () => { await marketo.checkAccessToken() } }),
    ...(config.sync.enabled ? [cachedCheck(syncSchedulersCheck(clusterGauges.queue.bind(clusterGauges)))] : [])
  ]
  const worker = buildWorker({
    config,
    logger,
    connect,
    jobObserver: jobMetrics(metrics),
    sharedConnections: budgetConnection === undefined ? [metricsConnection, dataverseLimitConnection] : [metricsConnection, dataverseLimitConnection, budgetConnection],
    // Every feature a worker process runs; a new one (the background sync) is one more line here.
    features: [
      flowStepWorkerFeature({
        dataverse,
        marketo,
        callbackCredentialsBox: createCallbackCredentialsBox(config)
      }),
      // BACKGROUND_SYNC=on only (off by default while the sync is built): Dynamics → Marketo so far.
      ...(config.sync.enabled
        ? [backgroundSyncWorkerFeature({
            dataverse,
            marketo,
            fieldMapping: async () => await checkedFieldMapping(config, logger, marketo, dataverse),
            whoAmI: async () => await dataverse.whoAmI(),
            // The status page's throughput is counted beside the metrics (src/admin/status-page-throughput.ts).
            passObserver: countingThroughput(new SyncProgress(metricsConnection, config.redis.keyPrefix, metrics), new SyncThroughput(metricsConnection, config.redis.keyPrefix)),
            ...(config.sync.dynamicsPageSize === undefined ? {} : { pageSize: config.sync.dynamicsPageSize })
          })]
        : [])
    ]
  })
  leader.start()
  const ops = buildOpsServer({ logger, exposition: metricsExposition(registry, clusterGauges), health: { redis: metricsConnection, checks: readinessChecks } })
  ops.catch(() => undefined)
  let closing: Promise<void> | undefined
  return {
    ready: worker.ready,
    ops,
    close () {
      // The lease first, so another worker exports the cluster gauges at once; the ops server only
      // after the workers have drained (buildWorker's close, which closes the connections last), so
      // a scrape during the drain still sees the counters of the jobs finishing in it.
      closing ??= (async () => {
        await leader.close()
        await worker.close()
        await ops.then(async (server) => { await server.close() }, () => undefined)
        await clusterGauges.close().catch(() => undefined)
      })()
      return closing
    }
  }
}

/**
 * The background sync's job schedulers, present in Redis: one per Dynamics table and Marketo's
 * one. A scheduler is upserted by every worker at start; one missing means no pass of that feed
 * is being added, whatever else is healthy.
 */
function syncSchedulersCheck (queue: (name: typeof QUEUE.syncDynamicsChanges | typeof QUEUE.syncMarketoChanges) => Queue): DependencyCheck {
  return {
    name: 'sync-schedulers',
    async check () {
      const expected = [
        ...SYNC_TABLES.map((table) => [QUEUE.syncDynamicsChanges, dynamicsChangeSchedulerId(table)] as const),
        [QUEUE.syncMarketoChanges, MARKETO_CHANGE_SCHEDULER_ID] as const
      ]
      const found = await Promise.all(expected.map(async ([name, id]) => await queue(name).getJobScheduler(id)))
      const missing = expected.filter((_, index) => found[index] === undefined || found[index] === null).map(([, id]) => id)
      if (missing.length > 0) throw new DependencyCheckFailedError('SCHEDULER_MISSING', `job schedulers missing: ${missing.join(', ')}`)
    }
  }
}

/**
 * The mapping file checked against both schemas (issue 12 §4). A file that is not a mapping, or one
 * naming a field Marketo or Dataverse lacks (or a read-only target, a type mismatch), is the
 * operator's to fix, like a bad variable: it becomes a ConfigError, which the worker reports as its
 * message naming every field, without a stack. Marketo or Dataverse unreachable stays what it is.
 */
async function checkedFieldMapping (config: Config, logger: Logger, marketo: MarketoRestClient, dataverse: DataverseClient): Promise<FieldMapping> {
  const mappingFile = config.sync.fieldMappingFile
  try {
    const { mapping } = await checkFieldMappingAtStartup({ marketo, dataverse, mappingFile, logger: logger.child({ feature: 'background-sync' }) })
    return mapping
  } catch (error) {
    if (error instanceof FieldMappingMismatchError) throw new ConfigError([`SYNC_FIELD_MAPPING_FILE ${mappingFile}: ${error.message}`])
    if (error instanceof FieldMappingError) throw new ConfigError([`SYNC_FIELD_MAPPING_FILE: ${error.message}`])
    throw error
  }
}
