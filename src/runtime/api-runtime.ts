import type { FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import type { Redis } from 'ioredis'
import type { Config } from '../config.ts'
import { buildApp } from '../app.ts'
import { createApiRedisConnection } from '../queue/connections.ts'
import { createFlowStepQueues, type FlowStepQueues } from '../queue/create-queues.ts'
import { AssignToChoices } from '../flow-step/assign-to-choices.ts'
import { createCallbackCredentialsBox, createDataverseClient } from './service-clients.ts'

/**
 * The API process's parts wired from config: its fail-fast Redis connection, the queues it
 * feeds, the Dataverse client behind the Assign To picklist, and the app. Closing the app closes
 * the rest. `src/server.ts` listens on it; tests build the very same thing.
 */
export interface ApiRuntime {
  readonly app: FastifyInstance
  /** Exposed for inspection (tests, tooling); owned and closed by the app. */
  readonly queues: FlowStepQueues
  readonly redis: Redis
}

export async function buildApiRuntime (config: Config, logger: Logger): Promise<ApiRuntime> {
  const redis = createApiRedisConnection(config.redis.url, 'mds-api')
  redis.on('error', (error) => logger.warn({ err: error }, 'redis connection error'))
  const queues = createFlowStepQueues(redis, {
    prefix: config.redis.keyPrefix,
    onError: (error, queue) => { logger.warn({ err: error, queue }, 'queue error') },
    flowStepRetry: config.flowStep,
    callbackRetry: config.callback
  })
  const app = await buildApp({
    config,
    logger,
    redis,
    queues,
    assignToChoices: new AssignToChoices(createDataverseClient(config, logger), redis, `${config.redis.keyPrefix}:cache:picklist:assignTo`, logger),
    callbackCredentialsBox: createCallbackCredentialsBox(config)
  })
  app.addHook('onClose', async () => {
    await queues.close()
    redis.disconnect()
  })
  return { app, queues, redis }
}
