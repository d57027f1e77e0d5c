import t from 'tap'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { freePort } from '../../sandbox/redis-server.ts'
import { startSandbox } from '../../sandbox/start-sandbox.ts'
import { SANDBOX_READY_MARK } from '../../sandbox/sandbox-guide.ts'
import { waitUntilReady } from '../../sandbox/wait-until-ready.ts'
import { eventually } from '../helpers/flow-step-harness.ts'
import { descendantsOf, stillRunning } from '../helpers/process-tree.ts'

/**
 * A process manager (or `docker stop`, whose image runs `npm start`) sends SIGTERM to npm alone,
 * not to its process group. npm passes it to the script's shell, and `sh -c` neither forwards it
 * nor waits: it dies and leaves the script's process running without anyone to stop it. Every npm
 * script that starts a long-running process must stop with npm, its whole process tree with it.
 */

const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url))
/** Generous, for a busy CI machine: the services close in well under a second when idle. */
const STOP_DEADLINE_MS = 30_000

interface ScriptUnderTest {
  readonly script: string
  /** The process that must be found in npm's tree before the signal: the script really started. */
  readonly entry: RegExp
  env (): Promise<Record<string, string | undefined>>
  started (output: () => string, env: Record<string, string | undefined>): Promise<unknown>
}

// One sandbox (emulators and Redis) gives `npm start` and `npm run worker` the environment they need.
const sandbox = await startSandbox({})
t.teardown(async () => { await sandbox.close() })
const serviceEnv = async () => ({ ...process.env, ...sandbox.env, PORT: String(await freePort()) })

const scripts: ScriptUnderTest[] = [
  {
    script: 'start',
    entry: /src\/server\.ts/,
    env: serviceEnv,
    started: async (_output, env) => { await waitUntilReady(`http://127.0.0.1:${env.PORT}/health/ready`, { timeoutMs: 30_000 }) }
  },
  {
    script: 'worker',
    entry: /src\/worker\.ts/,
    env: serviceEnv,
    started: async (output) => await eventually(() => /"worker started"/.test(output()) || undefined, { timeoutMs: 30_000, what: 'the worker to start' })
  },
  {
    script: 'sandbox',
    entry: /sandbox\/launcher\.ts/,
    env: async () => {
      const env: Record<string, string | undefined> = {
        ...process.env, PORT: String(await freePort()), SANDBOX_MARKETO_PORT: '0', SANDBOX_DATAVERSE_PORT: '0', SANDBOX_AZURE_AD_PORT: '0'
      }
      delete env.REDIS_URL
      return env
    },
    started: async (output) => await eventually(() => output().includes(SANDBOX_READY_MARK) || undefined, { timeoutMs: 45_000, what: 'the sandbox guide' })
  }
]

for (const { script, entry, env: envFor, started } of scripts) {
  t.test(`SIGTERM to \`npm run ${script}\` alone stops every process it started`, async (t) => {
    const env = await envFor()
    // Its own process group only so that the teardown can remove leftovers of a failed run at once.
    const npm = spawn('npm', ['run', '--silent', script], { cwd: PROJECT_ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    npm.stdout.on('data', (chunk: Buffer) => { output += chunk.toString('utf8') })
    npm.stderr.on('data', (chunk: Buffer) => { output += chunk.toString('utf8') })
    let tree: ReturnType<typeof descendantsOf> = []
    t.teardown(() => {
      for (const pid of [-(npm.pid ?? 0), ...tree.map((process) => process.pid)]) {
        try { process.kill(pid, 'SIGKILL') } catch { /* already gone */ }
      }
    })

    await started(() => output, env)
    tree = descendantsOf(npm.pid ?? 0)
    t.ok(tree.some((process) => entry.test(process.command)), `the script's process runs under npm (${tree.map((p) => p.command).join('; ')})`)

    process.kill(npm.pid ?? 0, 'SIGTERM')
    await eventually(() => (npm.exitCode !== null || npm.signalCode !== null) || undefined,
      { timeoutMs: STOP_DEADLINE_MS, intervalMs: 100, what: `npm run ${script} to exit` })
    const left = await eventually(() => { const running = stillRunning(tree); return running.length === 0 ? running : undefined },
      { timeoutMs: STOP_DEADLINE_MS, intervalMs: 100, what: `the processes of npm run ${script} to stop` })
      .catch(() => stillRunning(tree))
    t.same(left.map((process) => process.command), [], 'no process of the tree is left running')
  })
}
