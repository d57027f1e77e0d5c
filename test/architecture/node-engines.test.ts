import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { promisify } from 'node:util'
import t from 'tap'

/**
 * package.json `engines` must be true of the development machines (Node 20) and of the image
 * (Dockerfile, Node 24). Two production dependencies are ES modules only and are `require`d by
 * CommonJS packages: content-disposition 3 by @fastify/static (under @fastify/swagger-ui and
 * @bull-board/fastify) and cookie 2 by light-my-request (Fastify's inject). That works only where
 * Node loads an ES module through `require` by default: 20.19 and 22.12 on (require(esm), on by
 * default from those releases; before them behind --experimental-require-module). Both declare
 * `node >= 22` because Node 20 is out of support, not for an API 20.19 lacks: every test here runs
 * them on Node 20.
 */

const ROOT = new URL('../../', import.meta.url)
const packageJson = JSON.parse(readFileSync(new URL('package.json', ROOT), 'utf8')) as { engines: { node: string } }
const engines = packageJson.engines.node

/** `^a.b.c` and `>=a.b.c` comparators joined by `||`: the forms our engines field is written in. */
function satisfies (range: string, version: string): boolean {
  const parse = (text: string) => text.replace(/^v/, '').split('.').map(Number) as [number, number, number]
  const compare = (a: readonly number[], b: readonly number[]) => a[0]! - b[0]! || a[1]! - b[1]! || a[2]! - b[2]!
  const wanted = parse(version)
  return range.split('||').map((part) => part.trim()).some((comparator) => {
    const match = /^(\^|>=)(\d+\.\d+\.\d+)$/.exec(comparator)
    if (match === null) throw new Error(`engines comparator not understood here: ${comparator}`)
    const floor = parse(match[2]!)
    return compare(wanted, floor) >= 0 && (match[1] === '>=' || wanted[0] === floor[0])
  })
}

t.test('engines admits the development machines\' Node 20, the image\'s Node and this one', async (t) => {
  const images = [...readFileSync(new URL('Dockerfile', ROOT), 'utf8').matchAll(/^FROM node:(\d+)[-.\w]*/gm)].map((match) => Number(match[1]))
  t.ok(images.length > 0, 'the Dockerfile names its Node image')
  for (const major of images) t.ok(satisfies(engines, `${major}.0.0`), `the image's Node ${major} satisfies ${engines}`)
  t.ok(satisfies(engines, process.version), `this Node, ${process.version}, satisfies ${engines}`)
  t.ok(satisfies(engines, '20.19.0'), 'Node 20 from the release that loads ES modules through require')
})

t.test('engines refuses the releases that cannot require the ES-only dependencies', async (t) => {
  for (const version of ['20.12.0', '20.18.3', '22.0.0', '22.11.0']) {
    t.notOk(satisfies(engines, version), `${version}: require(esm) is off by default there`)
  }
})

t.test('the production dependencies do need require(esm): without it the admin dashboard and the docs cannot load', async (t) => {
  const load = async (specifier: string, flags: string[]) => {
    try {
      await promisify(execFile)(process.execPath, [...flags, '--input-type=module', '-e', `await import(${JSON.stringify(specifier)})`], { cwd: ROOT })
      return 'loaded'
    } catch (error) {
      return /ERR_REQUIRE_ESM/.exec(String((error as { stderr?: string }).stderr))?.[0] ?? String(error)
    }
  }
  for (const specifier of ['@bull-board/fastify', '@fastify/static', 'light-my-request']) {
    t.equal(await load(specifier, ['--no-experimental-require-module']), 'ERR_REQUIRE_ESM', `${specifier} without require(esm)`)
    t.equal(await load(specifier, []), 'loaded', `${specifier} on this Node as it runs by default`)
  }
})
