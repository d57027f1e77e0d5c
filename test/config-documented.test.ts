import t from 'tap'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { loadConfig } from '../src/config.ts'
import { REQUIRED_ENVIRONMENT } from './helpers/valid-environment.ts'

/**
 * An operator learns what can be set from the README's configuration table and `.env.example`, so
 * every variable src/config.ts reads must be in both, and neither may name one it no longer reads.
 * The names read are found by watching `loadConfig` itself (every read goes through the
 * environment object it is given), not by a list kept beside it that could drift too.
 */

const ROOT = fileURLToPath(new URL('../', import.meta.url))

function variablesRead (environment: Record<string, string>): Set<string> {
  const read = new Set<string>()
  const watched = new Proxy(environment, {
    get (target, name) {
      if (typeof name === 'string') read.add(name)
      return target[name as string]
    }
  })
  try { loadConfig(watched) } catch { /* an incomplete environment still reads every name */ }
  return read
}

const complete = { ...REQUIRED_ENVIRONMENT }
const read = [...new Set([...variablesRead({}), ...variablesRead(complete)])].sort()

/** The README's `## Configuration` section: its table names each variable in backticks in the first column. */
function readmeConfigurationVariables (): Set<string> {
  const readme = readFileSync(`${ROOT}README.md`, 'utf8')
  const section = readme.split(/^## /m).find((part) => part.startsWith('Configuration\n')) ?? ''
  const names = new Set<string>()
  for (const line of section.split('\n')) {
    const firstCell = /^\|([^|]*)\|/.exec(line)?.[1] ?? ''
    for (const match of firstCell.matchAll(/`([A-Z][A-Z0-9_]*)`/g)) names.add(match[1]!)
  }
  return names
}

/** `.env.example`: `NAME=value`, or `# NAME=default` for one left at its default. */
function envExampleVariables (): Set<string> {
  const example = readFileSync(`${ROOT}.env.example`, 'utf8')
  return new Set([...example.matchAll(/^(?:# )?([A-Z][A-Z0-9_]*)=/gm)].map((match) => match[1]!))
}

t.test('loadConfig is watched reading the environment (the check below is not vacuous)', async (t) => {
  t.ok(read.includes('SSFS_API_KEY') && read.includes('REDIS_CLUSTER') && read.includes('AZURE_CLIENT_CERTIFICATE_PATH'), read.join(', '))
})

t.test('every variable src/config.ts reads is in the README configuration table, and the table names no other', async (t) => {
  const documented = readmeConfigurationVariables()
  t.same(read.filter((name) => !documented.has(name)), [], 'read but missing from the README table')
  t.same([...documented].filter((name) => !read.includes(name)), [], 'in the README table but not read')
})

t.test('every variable src/config.ts reads is in .env.example, and it sets no other', async (t) => {
  const example = envExampleVariables()
  t.same(read.filter((name) => !example.has(name)), [], 'read but missing from .env.example')
  t.same([...example].filter((name) => !read.includes(name)), [], 'in .env.example but not read')
})
