import type { Logger } from 'pino'
import { ConfigError } from '../errors.ts'

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

/**
 * A configuration problem is the operator's to fix: say what, not where in the code. Anything
 * else at start-up is unexpected and keeps its stack.
 */
export function reportStartFailure (processName: string): (error: unknown) => void {
  return (error) => {
    const text = error instanceof ConfigError ? error.message : `failed to start: ${(error as Error).stack ?? String(error)}`
    process.stderr.write(`${processName}: ${text}\n`)
    process.exit(1)
  }
}
