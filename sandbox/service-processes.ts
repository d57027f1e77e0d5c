import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import type { Writable } from 'node:stream'

/**
 * The API and the worker as the separate processes they are in production (`npm start`,
 * `npm run worker`), configured only through their environment. Their JSON log lines are relayed
 * to the launcher's terminal with a `[api]` / `[worker]` prefix so the two streams stay apart.
 */

export interface ServiceProcessOptions {
  /** `api`, `worker`: the log prefix. */
  readonly name: string
  /** Entry file, relative to `cwd`: `src/server.ts` (run through tsx), or a compiled `dist/src/server.js` (plain node, as the image runs it). */
  readonly entry: string
  readonly cwd: string
  readonly env: Readonly<Record<string, string | undefined>>
  /** Where the prefixed output goes (the terminal). */
  readonly output: Writable
}

export interface ServiceExit {
  readonly name: string
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

export interface ServiceProcess {
  readonly name: string
  readonly pid: number | undefined
  /** Settles once, when the process has exited (for whatever reason). */
  readonly exited: Promise<ServiceExit>
  /** SIGTERM (the service closes gracefully), then SIGKILL once `deadlineMs` has passed. */
  stop (deadlineMs: number): Promise<ServiceExit>
  /** Last resort from a synchronous `exit` handler: no waiting possible. */
  killNow (): void
}

export function spawnServiceProcess (options: ServiceProcessOptions): ServiceProcess {
  // `node --import tsx` runs the TypeScript entry in this one process: no npm/npx/tsx-cli wrappers
  // in between, so signals reach the service itself and start-up is a few hundred ms faster. A
  // compiled entry runs on plain node, with no loader, exactly as in the image.
  const loader = options.entry.endsWith('.ts') ? ['--import', 'tsx'] : []
  const child: ChildProcess = spawn(process.execPath, [...loader, options.entry], {
    cwd: options.cwd,
    env: options.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group: a Ctrl-C in the terminal reaches only the launcher, which stops the
    // services once each (a second signal would make them skip their graceful close).
    detached: true
  })
  relayLines(child, options.name, options.output)
  const exited = new Promise<ServiceExit>((resolve) => {
    child.once('exit', (code, signal) => resolve({ name: options.name, code, signal }))
    // Spawning node itself failed (never expected: it is the running executable).
    child.once('error', () => resolve({ name: options.name, code: null, signal: null }))
  })
  const running = () => child.exitCode === null && child.signalCode === null

  return {
    name: options.name,
    pid: child.pid,
    exited,
    async stop (deadlineMs) {
      if (running()) child.kill('SIGTERM')
      const timer = setTimeout(() => { if (running()) child.kill('SIGKILL') }, deadlineMs)
      try {
        return await exited
      } finally {
        clearTimeout(timer)
      }
    },
    killNow () {
      if (running()) child.kill('SIGKILL')
    }
  }
}

function relayLines (child: ChildProcess, name: string, output: Writable): void {
  const prefix = `[${name}] `
  for (const stream of [child.stdout, child.stderr]) {
    if (stream === null) continue
    createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => output.write(prefix + line + '\n'))
  }
}

export function describeExit (exit: ServiceExit): string {
  if (exit.signal !== null) return `the ${exit.name} process was killed by ${exit.signal}`
  if (exit.code === null) return `the ${exit.name} process could not be started`
  return `the ${exit.name} process exited with code ${exit.code}`
}
