import type { Logger } from 'pino'
import { ConfigError } from '../errors.ts'

/**
 * SIGTERM/SIGINT: close gracefully (finish active jobs, drain HTTP), but never hang a deploy —
 * a hard deadline (`SHUTDOWN_DEADLINE_MS`) ends the process if closing takes too long. A worker
 * hands its jobs still running back to the queue before then (`handBackDelayMs`). A second signal
 * exits at once.
 */
export function exitOnSignals (logger: Logger, close: () => Promise<void>, deadlineMs: number): void {
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
 * When a closing worker stops waiting for its jobs and hands the ones still running back to the
 * queue: the last quarter of the deadline, at most 5 s, is kept for that, so a job can finish the
 * Dataverse request it has in flight, save what it decided and move back to wait before the
 * deadline ends the process. Handed back, a job is taken by another worker at once; left to the
 * deadline, it would wait for its lock to expire (`WORKER_LOCK_DURATION_MS`) and count as a stall.
 */
export function handBackDelayMs (deadlineMs: number): number {
  return deadlineMs - Math.min(5_000, Math.floor(deadlineMs / 4))
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
