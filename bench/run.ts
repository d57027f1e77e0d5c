import { spawn, type ChildProcess } from 'node:child_process'
import { constants } from 'node:os'
import { fileURLToPath } from 'node:url'
import { DEFAULT_TLS_DIR } from '../sandbox/start-sandbox.ts'
import { ensureSandboxTls } from '../sandbox/tls.ts'

/**
 * `npm run bench [name…]`: runs the named scenarios (all when none is named), each in its own
 * process as pino's runner does, so one scenario's heap, sockets and JIT state cannot colour the
 * next one's figures. Each prints a table and writes bench/results/<name>.json.
 *
 * A SIGTERM (a process manager, `docker stop`, npm passing on its own) or SIGINT (Ctrl-C) stops the
 * running scenario too, and no further one starts: the scenario runs in its own process group, so
 * it hears the signal once, from here, and stops its services, emulators and Redis before exiting
 * (bench/lib/stop-on-signal.ts). Without this the scenario, and every process it started, ran on.
 */

const SCENARIOS = ['intake', 'create-latency', 'memory'] as const
const ROOT = fileURLToPath(new URL('../', import.meta.url))

const requested = process.argv.slice(2)
const unknown = requested.filter((name) => !(SCENARIOS as readonly string[]).includes(name))
if (unknown.length > 0) {
  process.stderr.write(`unknown benchmark(s): ${unknown.join(', ')}; choose from ${SCENARIOS.join(', ')}\n`)
  process.exit(2)
}
const chosen = requested.length === 0 ? [...SCENARIOS] : requested

// The sandbox's Azure AD emulator serves HTTPS from a private CA (created on a fresh checkout).
const tls = await ensureSandboxTls(DEFAULT_TLS_DIR)
const env = { ...process.env, NODE_EXTRA_CA_CERTS: tls.caPath }
/** Longer than a scenario needs to stop its processes (each gets 15 s to close gracefully). */
const STOP_DEADLINE_MS = 45_000
let running: ChildProcess | undefined
let stoppedBy: NodeJS.Signals | undefined
// `on`, not `once`: a terminal's Ctrl-C reaches npm and this process, and npm passes it on again.
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
  process.on(signal, () => {
    if (stoppedBy !== undefined) return
    stoppedBy = signal
    process.exitCode = 128 + constants.signals[signal]
    running?.kill(signal)
    // Last resort: the scenario's whole process group (its own services have groups of their own).
    setTimeout(() => { if (running?.pid !== undefined) try { process.kill(-running.pid, 'SIGKILL') } catch { /* gone */ } }, STOP_DEADLINE_MS).unref()
  })
}

const started = performance.now()
const durations: Array<{ name: string, seconds: number, code: number | null }> = []
for (const name of chosen) {
  if (stoppedBy !== undefined) break
  const scenarioStarted = performance.now()
  process.stdout.write(`\n=== ${name} ===\n`)
  const code = await new Promise<number | null>((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', `bench/${name}.bench.ts`], { cwd: ROOT, env, stdio: 'inherit', detached: true })
    running = child
    child.once('exit', (exitCode) => { running = undefined; resolve(exitCode) })
  })
  durations.push({ name, seconds: Math.round((performance.now() - scenarioStarted) / 100) / 10, code })
  if (code !== 0 && stoppedBy === undefined) process.exitCode = 1
}
if (stoppedBy !== undefined) process.stdout.write(`\n${stoppedBy}: stopped\n`)
process.stdout.write(`\n${durations.map((d) => `${d.name}: ${d.seconds} s${d.code === 0 ? '' : ` (exit ${d.code})`}`).join(', ')}; total ${Math.round((performance.now() - started) / 1000)} s\n`)
