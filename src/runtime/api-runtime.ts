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
import { Registry } from 'prom-client'
import { createServiceMetrics } from '../metrics/service-metrics.ts'
import { outsideCallMetrics } from '../metrics/outside-calls.ts'
import { metricsExposition } from '../metrics/metrics-exposition.ts'
import { cachedCheck } from '../metrics/readiness.ts'
import { buildOpsServer } from './ops-server.ts'

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
  /** The ops server (`/metrics`, health) for OPS_HOST:OPS_PORT; closed with the app. */
  readonly ops: FastifyInstance
}

export async function buildApiRuntime (config: Config, logger: Logger): Promise<ApiRuntime> {
  // A lost Redis is logged once per outage, at which address, while the connection keeps retrying.
  const redis = new RedisReachability({ url: config.redis.url, logger }).watch(createApiRedisConnection(config.redis.url, 'mds-api', config.redis))
  // Marketo must get an answer, never a hung request: past 2 s the invocation is refused (503)
  // and Marketo re-sends it.
  const intake = new FlowStepIntake({ redis, keys: flowStepIntakeKeys(config.redis.keyPrefix), timeoutMs: 2_000 })
  // A registry per process, passed in: no global default registry (src/metrics/service-metrics.ts).
  const registry = new Registry()
  const metrics = createServiceMetrics(registry, 'api')
  // One observer for every outside client of the API, so the admin's explain, resync and retry
  // calls count in mds_outside_calls_total as a worker's do.
  const observer = outsideCallMetrics(metrics)
  const dataverse = createDataverseClient(config, logger, undefined, observer)
  // Optional on the API: invocations are taken with Redis alone; only /getPicklist needs Dynamics.
  const readinessChecks = [cachedCheck({ name: 'dynamics-token', optional: true, check: async () => { await dataverse.checkAccessToken() } })]
  const app = await buildApp({
    config,
    logger,
    redis,
    metrics,
    readinessChecks,
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
        marketo: config.sync.enabled ? createMarketoRestClient(config, { callBudget: createMarketoCallBudget(config, redis), logger, observer }) : createMarketoRestClient(config, { observer })
      })
    ]
  })
  // The API's ops server exports no cluster gauges: the workers' metrics lease does (README, Metrics).
  const ops = await buildOpsServer({ logger, exposition: metricsExposition(registry), health: { redis, checks: readinessChecks } })
  app.addHook('onClose', async () => {
    await ops.close()
    redis.disconnect()
  })
  return { app, intake, redis, ops }
}
