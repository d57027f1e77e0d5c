import type { FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import type { Config } from '../config.ts'
import { buildApp } from '../app.ts'
import { createApiRedisConnection, type RedisClient } from '../queue/connections.ts'
import { FlowStepIntake, flowStepIntakeKeys } from '../queue/flow-step-intake.ts'
import { assignToPicklistCacheKey } from '../queue/redis-keys.ts'
import { AssignToChoices } from '../flow-step/assign-to-choices.ts'
import { flowStepApiFeature } from '../flow-step/flow-step-api-feature.ts'
import { RedisReachability } from '../queue/redis-reachability.ts'
import { adminApiFeature } from '../admin/admin-api-feature.ts'
import { createCallbackCredentialsBox, createDataverseClient, createMarketoCallBudget, createMarketoRestClient } from './service-clients.ts'

/**
 * The API process's parts wired from config: its fail-fast Redis connection, the intake it
 * appends invocations to, the Dataverse client behind the Assign To picklist, and the app.
 * Closing the app closes the rest. `src/server.ts` listens on it; tests build the very same thing.
 */
export interface ApiRuntime {
  readonly app: FastifyInstance
  /** Exposed for inspection (tests, tooling); owned and closed by the app. */
  readonly intake: FlowStepIntake
  readonly redis: RedisClient
}

export async function buildApiRuntime (config: Config, logger: Logger): Promise<ApiRuntime> {
  // A lost Redis is logged once per outage, at which address, while the connection keeps retrying.
  const redis = new RedisReachability({ url: config.redis.url, logger }).watch(createApiRedisConnection(config.redis.url, 'mds-api', config.redis))
  const dataverse = createDataverseClient(config, logger)
  // Marketo must get an answer, never a hung request: past 2 s the invocation is refused (503)
  // and Marketo re-sends it.
  const intake = new FlowStepIntake({ redis, keys: flowStepIntakeKeys(config.redis.keyPrefix), timeoutMs: 2_000 })
  const app = await buildApp({
    config,
    logger,
    redis,
    // Every feature the API serves; a new one is one more line here.
    features: [
      flowStepApiFeature({
        intake,
        assignToChoices: new AssignToChoices(dataverse, redis, assignToPicklistCacheKey(config.redis.keyPrefix), logger),
        callbackCredentialsBox: createCallbackCredentialsBox(config)
      }),
      // With ADMIN_API_KEY set. Its retries of parked changes are the API's only Marketo REST calls:
      // with the background sync on they take their slots of the shared budget, as a worker's do.
      adminApiFeature({
        dataverse,
        marketo: config.sync.enabled ? createMarketoRestClient(config, { callBudget: createMarketoCallBudget(config, redis), logger }) : createMarketoRestClient(config)
      })
    ]
  })
  app.addHook('onClose', async () => {
    redis.disconnect()
  })
  return { app, intake, redis }
}
