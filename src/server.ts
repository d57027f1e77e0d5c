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
  // Fastify's close stops accepting at once and answers the requests in flight before it resolves
  // (test/faults/graceful-shutdown.test.ts). It closes the connections idle when it starts; one whose
  // request was in flight turns idle only once answered, and would otherwise hold the close until
  // its keep-alive timeout (72 s): those are closed as they turn idle.
  exitOnSignals(logger, async () => {
    const sweep = setInterval(() => { app.server.closeIdleConnections() }, 50)
    try { await app.close() } finally { clearInterval(sweep) }
  }, config.shutdown.deadlineMs)
}

main().catch(reportStartFailure('marketo-dynamics-sync api'))
