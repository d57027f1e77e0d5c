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
export function buildWorkerRuntime (config: Config, logger: Logger): RunningWorker {
  const connect = (name: string) => createWorkerRedisConnection(config.redis.url, name, config.redis)
  // Dataverse's concurrency limit is per user, and every worker is the same user (issue 12 §11).
  const dataverseLimitConnection = connect('mds-worker-dataverse-limit')
  const dataverse = createDataverseClient(config, logger, dataverseLimitConnection)
  const budgetConnection = config.sync.enabled ? connect('mds-worker-marketo-budget') : undefined
  const marketo = budgetConnection === undefined
    ? createMarketoRestClient(config)
    : createMarketoRestClient(config, {
      callBudget: createMarketoCallBudget(config, budgetConnection),
      rateLimitRetries: MARKETO_RATE_LIMIT_RETRIES,
      rateLimitBackoffMs: MARKETO_RATE_LIMIT_BACKOFF_MS,
      logger
    })
  return buildWorker({
    config,
    logger,
    connect,
    sharedConnections: budgetConnection === undefined ? [dataverseLimitConnection] : [dataverseLimitConnection, budgetConnection],
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
            ...(config.sync.dynamicsPageSize === undefined ? {} : { pageSize: config.sync.dynamicsPageSize })
          })]
        : [])
    ]
  })
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
