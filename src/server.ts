import pino from 'pino'
import { loadConfig } from './config.ts'
import { ConfigError } from './errors.ts'
import { loggerOptions } from './logger.ts'
import { buildApp } from './app.ts'
import { createApiRedisConnection } from './queue/connections.ts'
import { createFlowStepQueues } from './queue/create-queues.ts'
import { AssignToChoices } from './flow-step/assign-to-choices.ts'
import { createCallbackCredentialsBox, createDataverseClient } from './runtime/service-clients.ts'
import { exitOnSignals } from './runtime/exit-on-signals.ts'

/** `npm start`: the HTTP API (Marketo's flow-step endpoints, docs, health). */
async function main (): Promise<void> {
  const config = loadConfig(process.env)
  const logger = pino(loggerOptions(config.logLevel, 'api'))
  const redis = createApiRedisConnection(config.redis.url, 'mds-api')
  redis.on('error', (error) => logger.warn({ err: error }, 'redis connection error'))
  const queues = createFlowStepQueues(redis, { prefix: config.redis.keyPrefix, flowStepRetry: config.flowStep, callbackRetry: config.callback })
  queues.flowStep.on('error', (error) => logger.warn({ err: error }, 'queue error'))
  queues.flowStepCallback.on('error', (error) => logger.warn({ err: error }, 'queue error'))
  const dataverse = createDataverseClient(config, logger)
  const app = await buildApp({
    config,
    logger,
    redis,
    queues,
    assignToChoices: new AssignToChoices(dataverse, redis, `${config.redis.keyPrefix}:cache:picklist:assignTo`, logger),
    callbackCredentialsBox: createCallbackCredentialsBox(config)
  })
  app.addHook('onClose', async () => {
    await queues.close()
    redis.disconnect()
  })
  await app.listen({ host: config.http.host, port: config.http.port })
  exitOnSignals(logger, async () => { await app.close() })
}

main().catch((error: unknown) => {
  // A configuration problem is the operator's to fix: say what, not where in the code.
  if (error instanceof ConfigError) {
    process.stderr.write(`marketo-dynamics-sync: ${error.message}\n`)
  } else {
    process.stderr.write(`marketo-dynamics-sync: failed to start: ${(error as Error).stack ?? String(error)}\n`)
  }
  process.exit(1)
})
