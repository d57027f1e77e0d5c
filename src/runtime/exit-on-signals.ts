import type { Logger } from 'pino'

/**
 * SIGTERM/SIGINT: close gracefully (finish active jobs, drain HTTP), but never hang a deploy —
 * a hard deadline ends the process if closing takes too long. A second signal exits at once.
 */
export function exitOnSignals (logger: Logger, close: () => Promise<void>, deadlineMs = 30_000): void {
  let closing = false
  const onSignal = (signal: NodeJS.Signals) => {
    if (closing) process.exit(1)
    closing = true
    logger.info({ signal }, 'shutting down')
    setTimeout(() => {
      logger.error({ deadlineMs }, 'shutdown deadline passed; exiting')
      process.exit(1)
    }, deadlineMs).unref()
    close().then(() => process.exit(0), (error: unknown) => {
      logger.error({ err: error }, 'error while shutting down')
      process.exit(1)
    })
  }
  process.on('SIGTERM', onSignal)
  process.on('SIGINT', onSignal)
}
