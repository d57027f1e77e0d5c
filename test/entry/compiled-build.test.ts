import t from 'tap'
import { execFile } from 'node:child_process'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { acceptedOnly, startProcessHarness } from '../helpers/process-harness.ts'

/**
 * The image runs the compiled JavaScript with plain node (Dockerfile: a build stage runs `tsc`, the
 * runtime stage holds production dependencies only). This builds the service as `npm run build`
 * does — into a directory of its own inside the project, so the build's bare imports resolve to the
 * project's node_modules and the working tree's dist/ is left alone — then runs the compiled API and
 * worker with no TypeScript loader and syncs persons end to end through the emulators.
 */

const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url))
const OUT_DIR = '.sandbox/compiled-build'
const run = promisify(execFile)

async function filesUnder (dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true })
  return entries.filter((entry) => entry.isFile()).map((entry) => join(entry.parentPath, entry.name))
}

await run('rm', ['-rf', OUT_DIR], { cwd: PROJECT_ROOT })
await run(process.execPath, [join(PROJECT_ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json', '--outDir', OUT_DIR], { cwd: PROJECT_ROOT })
await run(process.execPath, ['--import', 'tsx', 'scripts/copy-build-assets.ts', OUT_DIR], { cwd: PROJECT_ROOT })
t.teardown(async () => { await run('rm', ['-rf', OUT_DIR], { cwd: PROJECT_ROOT }) })

t.test('the build is plain JavaScript that needs no TypeScript loader', async (t) => {
  const files = await filesUnder(join(PROJECT_ROOT, OUT_DIR))
  const scripts = files.filter((file) => file.endsWith('.js'))
  t.ok(scripts.some((file) => file.endsWith('src/server.js')) && scripts.some((file) => file.endsWith('src/worker.js')), 'both entries are built')
  const tsSpecifiers: string[] = []
  for (const file of scripts) {
    const text = await readFile(file, 'utf8')
    if (/\bfrom\s+['"][^'"]+\.ts['"]|import\(\s*['"][^'"]+\.ts['"]|['"]tsx['"]/.test(text)) tsSpecifiers.push(file)
  }
  t.same(tsSpecifiers, [], 'no compiled file imports a .ts file or tsx')
  t.ok(files.some((file) => file.endsWith('src/sync/field-mapping.default.json')), 'the default field mapping is beside the code that reads it')
  t.ok(files.some((file) => file.endsWith('openapi/ssfs-service.json')), 'the SSFS definition is beside the routes that read it')
})

t.test('the image starts the files the build emits', async (t) => {
  const dockerfile = await readFile(join(PROJECT_ROOT, 'Dockerfile'), 'utf8')
  const compose = await readFile(join(PROJECT_ROOT, 'docker-compose.yml'), 'utf8')
  const entries = [...`${dockerfile}\n${compose}`.matchAll(/"dist\/([^"]+\.js)"/g)].map((match) => match[1]!)
  t.ok(entries.includes('src/server.js') && entries.includes('src/worker.js'), `the Dockerfile and compose start dist/src/server.js and dist/src/worker.js (found ${entries.join(', ')})`)
  const built = new Set((await filesUnder(join(PROJECT_ROOT, OUT_DIR))).map((file) => file.slice(join(PROJECT_ROOT, OUT_DIR).length + 1)))
  for (const entry of entries) t.ok(built.has(entry), `${entry} is built`)
  t.notMatch(dockerfile, /--import\s+tsx|\btsx\b.*\.ts/, 'the image runs no TypeScript loader')
})

t.test('the compiled API and worker sync persons end to end', async (t) => {
  const h = await startProcessHarness(t, {
    apiEntry: `${OUT_DIR}/src/server.js`,
    workerEntry: `${OUT_DIR}/src/worker.js`
  })
  const personIds = h.createPersons(3, 'compiled')
  const invocations = await h.runCampaign(personIds, 'batch')
  t.equal(acceptedOnly(invocations).length, 1, 'the compiled API accepted the invocation')
  const report = await h.reconcile(invocations)
  t.same(report.problems, [], 'every person is accounted for')
  t.equal(report.outcomes.created, 3, 'the compiled worker created the three leads')
  t.equal(h.sandbox.dataverse.store.list('leads').filter((lead) => String(lead.emailaddress1).startsWith('compiled')).length, 3, 'three leads in Dynamics')
})
