import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { freePort } from '../../sandbox/redis-server.ts'
import { eventually } from '../helpers/flow-step-harness.ts'
import { REQUIRED_ENVIRONMENT } from '../helpers/valid-environment.ts'

/**
 * `npm start` and `npm run worker` pointed at a Redis that is not there: within a few seconds each
 * says so in one line naming the address (never the password in REDIS_URL), instead of a line per
 * reconnect of every connection with a stack trace each. They keep retrying (the process stays up).
 */

const root = fileURLToPath(new URL('../../', import.meta.url))
const PASSWORD = 'redis-password-never-logged'

const validEnv = {
  ...REQUIRED_ENVIRONMENT,
  HOST: '127.0.0.1',
  PORT: '0'
}

for (const entry of ['src/server.ts', 'src/worker.ts']) {
  t.test(`${entry} says within seconds that Redis cannot be reached, and where, once`, async (t) => {
    // Nothing listens there: the port was free a moment ago and nobody is told of it.
    const port = await freePort()
    const child = spawn(process.execPath, ['--import', 'tsx', entry], {
      cwd: root,
      env: { PATH: process.env.PATH ?? '', ...validEnv, OPS_PORT: '0', REDIS_URL: `redis://default:${PASSWORD}@127.0.0.1:${port}` },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let output = ''
    child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
    child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
    const exited = once(child, 'exit')
    t.teardown(async () => {
      if (child.exitCode === null && child.signalCode === null) {
        // SIGKILL: a graceful close waits for Redis, which is the point of this test's absence.
        child.kill('SIGKILL')
        await exited
      }
    })

    const started = Date.now()
    const said = new RegExp(`redis cannot be reached at 127\\.0\\.0\\.1:${port}\\b`)
    // The line comes with the first failed connect (test/queue/redis-reachability.test.ts); the
    // deadline is mostly the process's own start (tsx compiling the entry) on a busy 2-core machine.
    await eventually(() => said.test(output) ? true : undefined, { timeoutMs: 15_000, what: 'the line saying Redis cannot be reached' })
    t.pass(`said ${Date.now() - started} ms after the process was started`)
    t.equal(child.exitCode, null, 'the process keeps running, retrying')

    // By now every connection the process opened at start has failed at least once (they all
    // connect at once); that each retry is not logged either is test/queue/redis-reachability.test.ts's.
    child.kill('SIGKILL')
    await exited

    t.equal(output.match(/redis cannot be reached/g)?.length, 1, 'said once for the outage, not once per retry or per connection')
    t.notMatch(output, /queue connection error|redis connection error|ECONNREFUSED 127/, 'no line per connection error')
    t.notMatch(output, PASSWORD, 'the password in REDIS_URL is never printed')
    t.notMatch(output, /\\n\s+at |\n\s+at /, 'no stack trace (in a JSON line or on its own)')
  })
}
