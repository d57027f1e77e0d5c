import pino from 'pino'
import { loadConfig } from './config.ts'
import { ConfigError } from './errors.ts'
import { loggerOptions } from './logger.ts'
import { buildWorker } from './build-worker.ts'
import { createWorkerRedisConnection } from './queue/connections.ts'
import { createCallbackCredentialsBox, createDataverseClient, createMarketoRestClient } from './runtime/service-clients.ts'
import { exitOnSignals } from './runtime/exit-on-signals.ts'

/** `npm run worker`: consumes the flow-step and callback queues. Run as many as load needs. */
async function main (): Promise<void> {
  const config = loadConfig(process.env)
  const logger = pino(loggerOptions(config.logLevel, 'worker'))
  const worker = buildWorker({
    config,
    logger,
    connect: (name) => {
      const connection = createWorkerRedisConnection(config.redis.url, name)
      connection.on('error', (error) => logger.warn({ err: error, connection: name }, 'redis connection error'))
      return connection
    },
    dataverse: createDataverseClient(config, logger),
    marketo: createMarketoRestClient(config),
    callbackCredentialsBox: createCallbackCredentialsBox(config)
  })
  logger.info({ concurrency: config.worker.concurrency }, 'worker started')
  exitOnSignals(logger, async () => { await worker.close() })
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError) {
    process.stderr.write(`marketo-dynamics-sync worker: ${error.message}\n`)
  } else {
    process.stderr.write(`marketo-dynamics-sync worker: failed to start: ${(error as Error).stack ?? String(error)}\n`)
  }
  process.exit(1)
})
