import type { Logger } from 'pino'
import type { Config } from '../config.ts'
import { buildWorker, type RunningWorker } from '../build-worker.ts'
import { createWorkerRedisConnection } from '../queue/connections.ts'
import { flowStepWorkerFeature } from '../flow-step/flow-step-worker-feature.ts'
import { createCallbackCredentialsBox, createDataverseClient, createMarketoRestClient } from './service-clients.ts'

/** A worker process's parts wired from config; `src/worker.ts` runs it, tests build the same. */
export function buildWorkerRuntime (config: Config, logger: Logger): RunningWorker {
  return buildWorker({
    config,
    logger,
    connect: (name) => createWorkerRedisConnection(config.redis.url, name, config.redis),
    // Every feature a worker process runs; a new one (the background sync) is one more line here.
    features: [
      flowStepWorkerFeature({
        dataverse: createDataverseClient(config, logger),
        marketo: createMarketoRestClient(config),
        callbackCredentialsBox: createCallbackCredentialsBox(config)
      })
    ]
  })
}
