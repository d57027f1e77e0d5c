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
  // tsx is the runtime that runs the TypeScript entry points (`npm start`); nothing imports it.
  const unused = [...production].filter((name) => !packagesUsed.has(name) && name !== 'tsx')
  t.same(unused, [], 'no production dependency is there only for the sandbox or the tests')
})

test('package-lock.json is in step with package.json, so `npm install` on a fresh clone leaves it unchanged', async (t) => {
  const lock = JSON.parse(await readFile(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, Record<string, unknown>> }
  const root = lock.packages['']!
  t.same(root.dependencies, packageJson.dependencies, 'dependencies')
  t.same(root.devDependencies, packageJson.devDependencies, 'devDependencies')
  t.same(root.engines, packageJson.engines, 'engines')
})
