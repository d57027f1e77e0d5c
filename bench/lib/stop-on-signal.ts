import { constants } from 'node:os'

/**
 * A benchmark process stopped by a signal (`npm run bench` forwards SIGTERM/SIGINT to it, see
 * bench/run.ts) must not leave its redis-server, emulators, API, workers or baseline servers
 * running. They run in their own process groups, and Node's default action for a signal ends the
 * process without its `exit` handlers, so nothing would stop them. Each part that starts
 * processes registers how to stop them; on the first signal every registered stop runs (newest
 * first: the services before the Redis they use), then the process exits with the signal's code.
 */

type Stop = () => Promise<void>

const STOP_DEADLINE_MS = 30_000
const SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const
const stops = new Set<Stop>()
let listening = false
let stopping: Promise<void> | undefined

/** Registers how to stop what was started; the returned function unregisters it once it is stopped. */
export function stopOnSignal (stop: Stop): () => void {
  if (!listening) {
    listening = true
    // `on`, not `once`: with nobody listening, tsx's signal hook would end the process at once
    // (skipping the stops), and a terminal may deliver Ctrl-C twice. Repeats change nothing.
    for (const signal of SIGNALS) process.on(signal, () => { stopping ??= stopEverything(signal) })
  }
  stops.add(stop)
  return () => { stops.delete(stop) }
}

async function stopEverything (signal: typeof SIGNALS[number]): Promise<void> {
  process.stderr.write(`[bench] ${signal}: stopping the services, the emulators and Redis\n`)
  const exitCode = 128 + constants.signals[signal]
  setTimeout(() => { process.exit(exitCode) }, STOP_DEADLINE_MS).unref()
  for (const stop of [...stops].reverse()) {
    try { await stop() } catch { /* the next part must still be stopped */ }
  }
  process.exit(exitCode)
}
