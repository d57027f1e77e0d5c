import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { promisify } from 'node:util'
import { CORE_SCHEMA, load as loadYaml, mergeTag } from 'js-yaml'
import t, { type Test } from 'tap'
import { loadConfig, type Config } from '../../src/config.ts'
import { REQUIRED_ENVIRONMENT } from '../helpers/valid-environment.ts'

/**
 * `docker compose up --scale worker=4` (issue 13 §8). No Docker engine runs on the development
 * machines, so what compose would do is read from docker-compose.yml: nothing assumes one worker,
 * the Dataverse requests stay under the per-user limit however many workers run, the image is
 * built once, PORT is honoured, and the settings compose gives the services are ones src/config.ts
 * reads, checked by loading them through loadConfig as a container would. The health checks are
 * run for real, as node commands against a server answering 200 and then 503.
 */

const COMPOSE_FILE = new URL('../../docker-compose.yml', import.meta.url)
/** Dataverse's concurrent requests per user (reference dataverse-web-api-and-msal.md §5). */
const DATAVERSE_CONCURRENCY_PER_USER = 52
const OUR_IMAGE = /^marketo-dynamics-sync(:|$)/

interface Service {
  readonly image?: string
  readonly build?: unknown
  readonly pull_policy?: string
  readonly container_name?: string
  readonly command?: readonly string[]
  readonly environment?: Readonly<Record<string, string | number>>
  readonly ports?: readonly string[]
  readonly healthcheck?: { readonly test?: readonly string[] }
  readonly stop_grace_period?: string
  readonly depends_on?: Readonly<Record<string, { readonly condition?: string }>>
  readonly volumes?: readonly string[]
}

// Merge keys (`<<: *service`) resolved as compose resolves them; js-yaml 5 leaves them out of its
// default schema (they are YAML 1.1), so a plain load would see a key named `<<`.
const compose = loadYaml(readFileSync(COMPOSE_FILE, 'utf8'), { schema: CORE_SCHEMA.withTags(mergeTag) }) as { services: Readonly<Record<string, Service>> }
const services = compose.services
const api = services.api!
const worker = services.worker!

/**
 * Compose's interpolation of `${NAME}`, `${NAME:-default}` and `$$` from the shell or the project's
 * .env (compose-spec interpolation.md); enough of it for the forms this file uses.
 */
function interpolate (value: string, variables: Readonly<Record<string, string>>): string {
  return value.replace(/\$\$|\$\{([A-Z_][A-Z0-9_]*)(?::-([^}]*))?\}/g, (match, name: string | undefined, fallback: string | undefined) => {
    if (match === '$$') return '$'
    const set = variables[name!]
    return set === undefined || set === '' ? (fallback ?? '') : set
  })
}

/** The environment a container of `service` starts with: its .env (`dotenv`) overridden by `environment:`. */
function containerEnvironment (service: Service, dotenv: Readonly<Record<string, string>> = {}): Record<string, string> {
  const set = Object.fromEntries(Object.entries(service.environment ?? {}).map(([name, value]) => [name, interpolate(String(value), dotenv)]))
  return { ...REQUIRED_ENVIRONMENT, ...dotenv, ...set }
}

function configOf (service: Service, dotenv: Readonly<Record<string, string>> = {}): Config {
  return loadConfig(containerEnvironment(service, dotenv))
}

/** Compose durations: `40s`, `1m30s`, `500ms`. */
function durationMs (duration: string): number {
  const units: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1_000, ms: 1, us: 0.001 }
  const parts = [...duration.matchAll(/(\d+(?:\.\d+)?)(ms|us|h|m|s)/g)]
  if (parts.length === 0 || parts.map((part) => part[0]).join('') !== duration) throw new Error(`not a compose duration: ${duration}`)
  return parts.reduce((total, part) => total + Number(part[1]) * units[part[2]!]!, 0)
}

/** Runs a service's `CMD` health check as Docker would (node is the image's, here the test's). */
async function runHealthCheck (service: Service, environment: Record<string, string>): Promise<number> {
  const [form, command, ...args] = service.healthcheck?.test ?? []
  if (form !== 'CMD' || command !== 'node') throw new Error(`expected a CMD node health check, got ${JSON.stringify(service.healthcheck?.test)}`)
  try {
    await promisify(execFile)(process.execPath, args, { env: { PATH: process.env.PATH ?? '', ...environment }, timeout: 10_000 })
    return 0
  } catch (error) {
    return (error as { code?: number }).code ?? -1
  }
}

/** A server answering `status` on /health/ready and 404 elsewhere; its port. */
async function readinessServer (t: Test, status: () => number): Promise<number> {
  const server = createServer((request, response) => {
    response.statusCode = request.url === '/health/ready' ? status() : 404
    response.end('{}')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => await new Promise<void>((resolve) => server.close(() => resolve())))
  return (server.address() as AddressInfo).port
}

t.test('nothing assumes one worker: no fixed container names, no host port published but the API\'s', async (t) => {
  for (const [name, service] of Object.entries(services)) {
    t.equal(service.container_name, undefined, `${name}: a container_name would stop a second replica`)
  }
  t.equal(worker.ports, undefined, 'a worker publishes no port: four replicas would clash on it')
  t.equal(services.redis?.ports, undefined, 'Redis is reached on the project network only')
  t.same(Object.keys(services).filter((name) => services[name]!.ports !== undefined), ['api'])
})

t.test('the workers\' Dataverse requests and the API\'s stay within 52 however many workers run', async (t) => {
  const workerConfig = configOf(worker)
  const apiConfig = configOf(api)
  // The workers share DYNAMICS_TOTAL_CONCURRENCY through Redis (src/dynamics/shared-concurrency-limit.ts),
  // so the worker count does not appear here; the API's look-ups are bounded by its own per-process limit.
  t.ok(workerConfig.dynamics.sharedConcurrentRequests + apiConfig.dynamics.maxConcurrentRequests <= DATAVERSE_CONCURRENCY_PER_USER,
    `workers together ${workerConfig.dynamics.sharedConcurrentRequests} + API ${apiConfig.dynamics.maxConcurrentRequests} ≤ ${DATAVERSE_CONCURRENCY_PER_USER}`)
  t.equal(workerConfig.dynamics.sharedConcurrentRequests, apiConfig.dynamics.sharedConcurrentRequests, 'one shared limit for every process')
  // Set by compose, not left to .env: a .env that raised them would otherwise break the sum.
  const fromDotenv = { DYNAMICS_TOTAL_CONCURRENCY: '52', DYNAMICS_MAX_CONCURRENCY: '52' }
  t.equal(configOf(worker, fromDotenv).dynamics.sharedConcurrentRequests, workerConfig.dynamics.sharedConcurrentRequests, 'the workers\' total is compose\'s, whatever .env says')
  t.equal(configOf(api, fromDotenv).dynamics.maxConcurrentRequests, apiConfig.dynamics.maxConcurrentRequests, 'the API\'s limit is compose\'s, whatever .env says')
})

t.test('Redis runs with persistence and noeviction, on a volume, with a health check the services wait for', async (t) => {
  const redis = services.redis!
  const command = (redis.command ?? []).join(' ')
  t.match(command, /--appendonly yes/)
  t.match(command, /--maxmemory-policy noeviction/)
  t.ok(redis.volumes?.some((volume) => volume.endsWith(':/data')), 'the AOF lives on a volume')
  t.ok(redis.healthcheck?.test !== undefined, 'Redis has a health check')
  for (const [name, service] of [['api', api], ['worker', worker]] as const) {
    t.equal(service.depends_on?.redis?.condition, 'service_healthy', `${name} starts once Redis answers`)
  }
})

t.test('the image is built once: one build, the same image for the API and the workers, never pulled', async (t) => {
  const builders = Object.entries(services).filter(([, service]) => service.build !== undefined).map(([name]) => name)
  t.same(builders, ['api'], 'only the api service builds')
  t.match(api.image, OUR_IMAGE)
  t.equal(worker.image, api.image, 'the worker runs the image the api service built')
  t.equal(worker.pull_policy, 'never', 'the worker never asks a registry for our image (compose builds it first)')
  t.same(api.command, ['node', 'dist/src/server.js'], 'compiled JavaScript, no TypeScript loader')
  t.same(worker.command, ['node', 'dist/src/worker.js'])
})

t.test('PORT is honoured: the API listens on it and the published port follows it', async (t) => {
  for (const dotenv of [{}, { PORT: '8080' }] as Array<Record<string, string>>) {
    const expected = dotenv.PORT ?? '3000'
    const config = configOf(api, dotenv)
    t.equal(config.http.port, Number(expected), `PORT ${dotenv.PORT ?? 'unset'}: the API listens on ${expected}`)
    t.equal(config.http.host, '0.0.0.0', 'on every interface of its container')
    const published = (api.ports ?? []).map((port) => interpolate(port, dotenv))
    t.same(published, [`${expected}:${expected}`], 'published on the same port')
  }
})

t.test('the API\'s health check asks /health/ready on PORT and fails on 503', async (t) => {
  let status = 200
  const port = await readinessServer(t, () => status)
  const environment = containerEnvironment(api, { PORT: String(port) })
  t.equal(await runHealthCheck(api, environment), 0, 'ready: healthy')
  status = 503
  t.equal(await runHealthCheck(api, environment), 1, 'not ready: unhealthy')
})

t.test('a worker\'s health check asks /health/ready on its ops port and fails on 503', async (t) => {
  t.equal(configOf(worker).ops.port, 9464, 'the same internal ops port in every replica')
  t.equal(configOf(worker).ops.host, '0.0.0.0', 'reachable by Prometheus on the project network')
  let status = 200
  const port = await readinessServer(t, () => status)
  // The check reads the port the worker's ops server listens on (OPS_PORT), not a number of its own.
  const environment = { ...containerEnvironment(worker), OPS_PORT: String(port) }
  t.equal(await runHealthCheck(worker, environment), 0, 'ready: healthy')
  status = 503
  t.equal(await runHealthCheck(worker, environment), 1, 'not ready: unhealthy')
})

t.test('Docker waits longer than SHUTDOWN_DEADLINE_MS before its SIGKILL', async (t) => {
  for (const [name, service] of [['api', api], ['worker', worker]] as const) {
    const grace = durationMs(service.stop_grace_period ?? '10s')
    const deadline = configOf(service).shutdown.deadlineMs
    t.ok(grace > deadline, `${name}: stop_grace_period ${grace} ms > SHUTDOWN_DEADLINE_MS ${deadline} ms`)
  }
})

t.test('every variable compose sets is one src/config.ts reads', async (t) => {
  const read = new Set<string>()
  const watched = new Proxy({ ...REQUIRED_ENVIRONMENT }, {
    get (target, name) {
      if (typeof name === 'string') read.add(name)
      return target[name as keyof typeof target]
    }
  })
  loadConfig(watched)
  t.ok(read.has('DYNAMICS_TOTAL_CONCURRENCY'), 'the watch sees what loadConfig reads')
  for (const [name, service] of Object.entries(services)) {
    for (const variable of Object.keys(service.environment ?? {})) {
      t.ok(read.has(variable), `${name}: ${variable} is read by src/config.ts`)
    }
  }
})
