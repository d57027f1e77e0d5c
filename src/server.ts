import pino from 'pino'
import { loadConfig } from './config.ts'
import { loggerOptions } from './logger.ts'
import { buildApiRuntime } from './runtime/api-runtime.ts'
import { exitOnSignals, reportStartFailure } from './runtime/process-lifecycle.ts'

/** `npm start`: the HTTP API (Marketo's flow-step endpoints, docs, health). */
async function main (): Promise<void> {
  const config = loadConfig(process.env)
  const logger = pino(loggerOptions(config.logLevel, 'api'))
  const { app, ops } = await buildApiRuntime(config, logger)
  await app.listen({ host: config.http.host, port: config.http.port })
  const opsUrl = await ops.listen({ host: config.ops.host, port: config.ops.port })
  logger.info({ opsUrl }, 'ops server listening (metrics, health)')
  exitOnSignals(logger, async () => { await app.close() })
}

main().catch(reportStartFailure('marketo-dynamics-sync api'))
