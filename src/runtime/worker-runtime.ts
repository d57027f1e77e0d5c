import type { Logger } from 'pino'
import type { Config } from '../config.ts'
import { buildWorker, type RunningWorker } from '../build-worker.ts'
import { createWorkerRedisConnection } from '../queue/connections.ts'
import { flowStepWorkerFeature } from '../flow-step/flow-step-worker-feature.ts'
import { backgroundSyncWorkerFeature } from '../background-sync/background-sync-worker-feature.ts'
import { fetchServiceUserId } from '../background-sync/who-am-i.ts'
import { createMsalAccessTokenProvider } from '../dynamics/access-token-provider.ts'
import { readFieldMappingFile } from '../sync/field-mapping-file.ts'
import { createCallbackCredentialsBox, createDataverseClient, createMarketoRestClient } from './service-clients.ts'

/** A worker process's parts wired from config; `src/worker.ts` runs it, tests build the same. */
export function buildWorkerRuntime (config: Config, logger: Logger): RunningWorker {
  const dataverse = createDataverseClient(config, logger)
  const marketo = createMarketoRestClient(config)
  return buildWorker({
    config,
    logger,
    connect: (name) => createWorkerRedisConnection(config.redis.url, name, config.redis),
    // Every feature a worker process runs; a new one (the background sync) is one more line here.
    features: [
      flowStepWorkerFeature({
        dataverse,
        marketo,
        callbackCredentialsBox: createCallbackCredentialsBox(config)
      }),
      // BACKGROUND_SYNC=on only (off by default while the sync is built): Dynamics → Marketo so far.
      // The mapping is read here, so a broken file stops start-up; its check against both schemas
      // (src/sync/field-mapping-check.ts) is not wired yet.
      ...(config.sync.enabled
        ? [backgroundSyncWorkerFeature({
            dataverse,
            marketo,
            mapping: readFieldMappingFile(config.sync.fieldMappingFile),
            whoAmI: async () => await fetchServiceUserId(config.dynamics.url, createMsalAccessTokenProvider({
              authorityHost: config.azure.authorityHost,
              tenantId: config.azure.tenantId,
              clientId: config.azure.clientId,
              credential: config.azure.credential,
              resourceUrl: config.dynamics.url
            }), config.dynamics.requestTimeoutMs)
          })]
        : [])
    ]
  })
}
