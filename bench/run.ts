import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { DEFAULT_TLS_DIR } from '../sandbox/start-sandbox.ts'
import { ensureSandboxTls } from '../sandbox/tls.ts'

/**
 * `npm run bench [name…]`: runs the named scenarios (all when none is named), each in its own
 * process as pino's runner does, so one scenario's heap, sockets and JIT state cannot colour the
 * next one's figures. Each prints a table and writes bench/results/<name>.json.
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
const started = performance.now()
const durations: Array<{ name: string, seconds: number, code: number | null }> = []
for (const name of chosen) {
  const scenarioStarted = performance.now()
  process.stdout.write(`\n=== ${name} ===\n`)
  const code = await new Promise<number | null>((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', `bench/${name}.bench.ts`], { cwd: ROOT, env, stdio: 'inherit' })
    child.once('exit', (exitCode) => resolve(exitCode))
  })
  durations.push({ name, seconds: Math.round((performance.now() - scenarioStarted) / 100) / 10, code })
  if (code !== 0) process.exitCode = 1
}
process.stdout.write(`\n${durations.map((d) => `${d.name}: ${d.seconds} s${d.code === 0 ? '' : ` (exit ${d.code})`}`).join(', ')}; total ${Math.round((performance.now() - started) / 1000)} s\n`)
