import { test } from 'tap'
import { readdir, readFile } from 'node:fs/promises'
import { builtinModules } from 'node:module'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import packageJson from '../../package.json' with { type: 'json' }

/**
 * The product (`src/`, `routes/`, `jobs/`) is what the image ships; the sandbox, tests and
 * benchmarks are not. These tests fail the build when product code reaches into them, or needs a
 * package that `npm ci --omit=dev` (the Dockerfile) would not install.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const PRODUCT_DIRS = ['src', 'routes', 'jobs']
const NOT_SHIPPED_DIRS = ['sandbox', 'test', 'bench', 'scripts']

async function sourceFiles (dir: string): Promise<string[]> {
  const entries = await readdir(join(ROOT, dir), { withFileTypes: true, recursive: true })
  return entries
    .filter((entry) => entry.isFile() && entry.name.endsWith('.ts'))
    .map((entry) => relative(ROOT, join(entry.parentPath, entry.name)))
}

/** Static `import … from '…'`, `export … from '…'` and dynamic `import('…')` specifiers. */
export function importSpecifiers (source: string): string[] {
  const specifiers: string[] = []
  for (const match of source.matchAll(/(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|(?:^|[\s;(=])import\s*\(\s*['"]([^'"]+)['"]\s*\)|^import\s+['"]([^'"]+)['"]/gm)) {
    specifiers.push(match[1] ?? match[2] ?? match[3] ?? '')
  }
  return specifiers
}

async function productImports (): Promise<Array<{ file: string, specifier: string }>> {
  const found: Array<{ file: string, specifier: string }> = []
  for (const dir of PRODUCT_DIRS) {
    for (const file of await sourceFiles(dir)) {
      const source = await readFile(join(ROOT, file), 'utf8')
      for (const specifier of importSpecifiers(source)) found.push({ file, specifier })
    }
  }
  return found
}

test('the import scanner sees static, re-exported and dynamic imports', async (t) => {
  t.same(importSpecifiers([
    "import { a } from '../sandbox/a.ts'",
    "import type { B } from './b.ts'",
    "export { c } from 'c-package'",
    "const d = await import('../sandbox/d.ts')",
    "import 'side-effect'"
  ].join('\n')), ['../sandbox/a.ts', './b.ts', 'c-package', '../sandbox/d.ts', 'side-effect'])
})

test('product code (src, routes, jobs) never imports the sandbox, tests, benchmarks or scripts', async (t) => {
  const imports = await productImports()
  t.ok(imports.length > 100, `scanned ${imports.length} imports`)
  const crossings = imports.filter(({ file, specifier }) => {
    if (!specifier.startsWith('.')) return false
    const target = relative(ROOT, resolve(ROOT, dirname(file), specifier))
    return NOT_SHIPPED_DIRS.some((dir) => target === dir || target.startsWith(`${dir}${sep}`))
  })
  t.same(crossings, [], 'no product file imports from sandbox/, test/, bench/ or scripts/')
})

test('product code needs only production dependencies, and every production dependency is used by it', async (t) => {
  const production = new Set(Object.keys(packageJson.dependencies))
  const builtins = new Set(builtinModules)
  const packagesUsed = new Set<string>()
  const notInstalledInTheImage: string[] = []
  for (const { file, specifier } of await productImports()) {
    if (specifier.startsWith('.') || specifier.startsWith('node:') || builtins.has(specifier)) continue
    const name = specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0]!
    packagesUsed.add(name)
    if (!production.has(name)) notInstalledInTheImage.push(`${file} imports ${name}`)
  }
  t.same(notInstalledInTheImage, [], 'every package the product imports is a production dependency')
  // No exception: the image runs the compiled build on plain node, so tsx (which runs the TypeScript
  // entries in development) is a dev dependency like the rest of the tool chain.
  const unused = [...production].filter((name) => !packagesUsed.has(name))
  t.same(unused, [], 'no production dependency is there only for the sandbox or the tests')
})

/** Where each product import lands, as a path from the project root (relative specifiers only). */
async function resolvedProductImports (): Promise<Array<{ file: string, specifier: string, target: string }>> {
  return (await productImports())
    .filter(({ specifier }) => specifier.startsWith('.'))
    .map(({ file, specifier }) => ({ file, specifier, target: relative(ROOT, resolve(ROOT, dirname(file), specifier)) }))
}

const SCHEMAS_DIR = `src${sep}schemas${sep}`

/**
 * The HTTP schemas describe the wire; the domain (record types, persons, record links) lives in
 * src/domain/ and the schemas are built from it, never the reverse. Besides the schemas themselves
 * and the route plugins, only the modules that produce or consume one wire format as such may
 * import a schema: each is named here with that format, so the list cannot grow unnoticed.
 */
const WIRE_FORMAT_EDGES: Readonly<Record<string, string>> = {
  [join('src', 'app.ts')]: 'registers the shared error-response schema for every route',
  [join('src', 'ssfs', 'openapi-document.ts')]: 'builds the SSFS definition Marketo installs from the route schemas',
  [join('src', 'ssfs', 'service-definition.ts')]: 'the /getServiceDefinition response document',
  [join('src', 'flow-step', 'accept-invocation.ts')]: 'reads the validated /submitAsyncAction body',
  [join('src', 'flow-step', 'assign-to-choices.ts')]: 'answers /getPicklist in its wire shape',
  [join('src', 'flow-step', 'callback-body.ts')]: 'builds the flowCallBack body Marketo receives',
  [join('src', 'marketo', 'flow-callback-client.ts')]: 'POSTs that flowCallBack body'
}

test('domain types are not taken from HTTP schemas: only schemas, routes and the named wire-format edges import src/schemas', async (t) => {
  const imports = await resolvedProductImports()
  const fromSchemas = imports.filter(({ target }) => target.startsWith(SCHEMAS_DIR))
  const outside = fromSchemas.filter(({ file }) => !file.startsWith(SCHEMAS_DIR) && !file.startsWith(`routes${sep}`) && WIRE_FORMAT_EDGES[file] === undefined)
  t.same(outside.map(({ file, specifier }) => `${file} imports ${specifier}`), [], 'no other product file imports src/schemas/')
  const stale = Object.keys(WIRE_FORMAT_EDGES).filter((edge) => !fromSchemas.some(({ file }) => file === edge))
  t.same(stale, [], 'every named wire-format edge still needs the schemas (else drop it from the list)')
})

test('the domain (src/domain) depends on nothing but itself', async (t) => {
  const domainDir = `src${sep}domain${sep}`
  const found = (await productImports()).filter(({ file }) => file.startsWith(domainDir))
  const leaving = found.filter(({ file, specifier }) => !specifier.startsWith('.') || !relative(ROOT, resolve(ROOT, dirname(file), specifier)).startsWith(domainDir))
  t.same(leaving.map(({ file, specifier }) => `${file} imports ${specifier}`), [], 'src/domain imports only src/domain')
})

/** A queue, worker or job named by a string literal in place of a src/queue/names.ts constant. */
export function literalQueueOrJobNames (source: string): string[] {
  const found: string[] = []
  for (const match of source.matchAll(/new\s+(?:Queue|Worker|QueueEvents|FlowProducer)\s*(?:<[^>]*>)?\s*\(\s*(['"`][^'"`]*['"`])|\.add\s*\(\s*(['"`][^'"`]*['"`])/g)) {
    found.push(match[1] ?? match[2] ?? '')
  }
  return found
}

test('the name finder sees literal queue, worker and job names', async (t) => {
  t.same(literalQueueOrJobNames([
    "new Queue<Data>('flow-step', {})",
    "new Worker('flow-step-callback', processor)",
    "await queues.flowStepCallback.add('send-flow-callback', data)",
    'queue.add(FLOW_STEP_JOB_NAME, data)',
    'new Queue(QUEUE.flowStep, {})'
  ].join('\n')), ["'flow-step'", "'flow-step-callback'", "'send-flow-callback'"])
})

test('src/queue/names.ts is the one registry of queue and job names: no product file spells one as a literal', async (t) => {
  const literals: string[] = []
  for (const dir of PRODUCT_DIRS) {
    for (const file of await sourceFiles(dir)) {
      for (const name of literalQueueOrJobNames(await readFile(join(ROOT, file), 'utf8'))) literals.push(`${file}: ${name}`)
    }
  }
  t.same(literals, [], 'every queue, worker and job name comes from src/queue/names.ts')
})

test('package-lock.json is in step with package.json, so `npm install` on a fresh clone leaves it unchanged', async (t) => {
  const lock = JSON.parse(await readFile(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, Record<string, unknown>> }
  const root = lock.packages['']!
  t.same(root.dependencies, packageJson.dependencies, 'dependencies')
  t.same(root.devDependencies, packageJson.devDependencies, 'devDependencies')
  t.same(root.engines, packageJson.engines, 'engines')
})
