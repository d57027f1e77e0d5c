import t from 'tap'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { eventually } from '../helpers/flow-step-harness.ts'
import { descendantsOf, stillRunning, type DescendantProcess } from '../helpers/process-tree.ts'

/**
 * `npm run bench` runs each scenario as a child process (bench/run.ts), and the scenario starts
 * its own redis-server, API processes and baseline servers, each in a process group of its own.
 * A SIGTERM to npm (a process manager, `docker stop`) or a Ctrl-C must stop all of them: the
 * runner passes the signal to the scenario, which stops what it started before exiting.
 */

const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url))
/** Generous, for a busy CI machine: the scenario's processes close in a second or two when idle. */
const STOP_DEADLINE_MS = 45_000

/**
 * The intake scenario has started every process it runs: Redis, the API (at info, and at warn
 * beside it), then the two baselines, started last.
 */
function wholeIntakeTree (tree: readonly DescendantProcess[]): boolean {
  const count = (pattern: RegExp) => tree.filter((process) => pattern.test(process.command)).length
  return count(/bench\/intake\.bench\.ts/) === 1 && count(/^redis-server /) === 1 &&
    count(/src\/server\.ts/) >= 1 && count(/bench\/lib\/baseline-server\.ts/) === 2
}

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  t.test(`${signal} to \`npm run bench:intake\` alone stops the scenario and every process it started`, async (t) => {
    const npm = spawn('npm', ['run', '--silent', 'bench:intake'], {
      cwd: PROJECT_ROOT,
      // Long points, so the scenario is surely still running when the signal comes.
      env: { ...process.env, BENCH_INTAKE_SECONDS: '60', BENCH_INTAKE_MAX_SECONDS: '60' },
      // Its own process group only so that the teardown can remove leftovers of a failed run at once.
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let output = ''
    npm.stdout.on('data', (chunk: Buffer) => { output += chunk.toString('utf8') })
    npm.stderr.on('data', (chunk: Buffer) => { output += chunk.toString('utf8') })
    let tree: DescendantProcess[] = []
    t.teardown(() => {
      for (const pid of [-(npm.pid ?? 0), ...tree.map((process) => process.pid)]) {
        try { process.kill(pid, 'SIGKILL') } catch { /* already gone */ }
      }
    })

    tree = await eventually(() => { const found = descendantsOf(npm.pid ?? 0); return wholeIntakeTree(found) ? found : undefined },
      { timeoutMs: 60_000, intervalMs: 200, what: 'the intake scenario to start its processes' })
      .catch((error: unknown) => { t.comment(output); throw error })

    process.kill(npm.pid ?? 0, signal)
    await eventually(() => (npm.exitCode !== null || npm.signalCode !== null) || undefined,
      { timeoutMs: STOP_DEADLINE_MS, intervalMs: 100, what: 'npm run bench:intake to exit' })
      .catch(() => undefined)
    const left = await eventually(() => { const running = stillRunning(tree); return running.length === 0 ? running : undefined },
      { timeoutMs: STOP_DEADLINE_MS, intervalMs: 100, what: 'the processes of npm run bench:intake to stop' })
      .catch(() => stillRunning(tree))
    t.same(left.map((process) => process.command), [], 'no process of the tree is left running')
    t.notOk(npm.exitCode === 0, `npm does not report success for a stopped bench (exit ${npm.exitCode}, signal ${npm.signalCode})`)
    t.notMatch(output, /results written to/, 'no result file written from an interrupted run')
  })
}
