import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'

/**
 * `npm start` and `npm run worker` with a bad environment: they stop at once with a message that
 * names every problem, and no stack trace (ops fix configuration, not code).
 */

const root = fileURLToPath(new URL('../../', import.meta.url))

async function runEntry (entry: string, env: Record<string, string>): Promise<{ code: number | null, stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', entry], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'ignore', 'pipe']
  })
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const [code] = await once(child, 'exit') as [number | null]
  return { code, stderr }
}

for (const entry of ['src/server.ts', 'src/worker.ts']) {
  t.test(`${entry} refuses to start without its configuration and says what is missing`, async (t) => {
    const { code, stderr } = await runEntry(entry, { PORT: 'http', DYNAMICS_URL: 'not-a-url' })
    t.equal(code, 1)
    t.match(stderr, /invalid configuration/)
    for (const problem of ['PORT must be an integer', 'SSFS_API_KEY is required', 'MARKETO_BASE_URL is required', 'DYNAMICS_URL must be an absolute URL', 'AZURE_TENANT_ID is required']) {
      t.match(stderr, problem)
    }
    t.notMatch(stderr, /\n\s+at /, 'no stack trace')
  })
}
