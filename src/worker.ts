import pino from 'pino'
import { loadConfig } from './config.ts'
import { loggerOptions } from './logger.ts'
import { buildWorkerRuntime } from './runtime/worker-runtime.ts'
import { exitOnSignals, reportStartFailure } from './runtime/process-lifecycle.ts'

/** `npm run worker`: consumes the flow-step and callback queues. Run as many as load needs. */
async function main (): Promise<void> {
  const config = loadConfig(process.env)
  const logger = pino(loggerOptions(config.logLevel, 'worker'))
  const worker = buildWorkerRuntime(config, logger)
  exitOnSignals(logger, async () => { await worker.close() }, config.shutdown.deadlineMs)
  // A start-up check that fails (the background sync's field mapping) ends the process here.
  const opsUrl = await (await worker.ops).listen({ host: config.ops.host, port: config.ops.port })
  logger.info({ opsUrl }, 'ops server listening (metrics, health)')
  await worker.ready
  logger.info({ concurrency: config.worker.concurrency }, 'worker started')
}

main().catch(reportStartFailure('marketo-dynamics-sync worker'))
