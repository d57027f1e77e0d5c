import t, { type Test } from 'tap'
import pino from 'pino'
import { startLocalRedis } from '../../sandbox/redis-server.ts'
import { loadConfig } from '../../src/config.ts'
import { buildApiRuntime } from '../../src/runtime/api-runtime.ts'
import { ADMIN_REALM_CHALLENGE, isCrossSite } from '../../src/admin/admin-auth.ts'
import { QUEUE } from '../../src/queue/names.ts'
import { REQUIRED_ENVIRONMENT, configProblems } from '../helpers/valid-environment.ts'

/**
 * Who opens `/admin` (issue 13 §4): the holder of ADMIN_API_KEY, as a bearer token or as HTTP
 * Basic's password with any user name; never Marketo's SSFS key. The API is built as `npm start`
 * builds it, on a real Redis; every request goes through real HTTP (the app listens).
 */

const redis = await startLocalRedis()
t.teardown(async () => { await redis.stop() })
const logger = pino({ level: 'silent' })
const ADMIN_KEY = 'admin-key-of-this-test-0001'
const SSFS_KEY = REQUIRED_ENVIRONMENT.SSFS_API_KEY!

async function listeningApi (t: Pick<Test, 'teardown'>, env: Record<string, string>): Promise<string> {
  const { app } = await buildApiRuntime(loadConfig({ ...REQUIRED_ENVIRONMENT, REDIS_URL: redis.url, ...env }), logger)
  t.teardown(async () => { await app.close() })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('not listening')
  return `http://127.0.0.1:${address.port}`
}

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`

t.test('ADMIN_API_KEY is checked at start-up: at least 16 characters, and not the SSFS key', async (t) => {
  t.match(configProblems({ ...REQUIRED_ENVIRONMENT, ADMIN_API_KEY: 'short' }), [/ADMIN_API_KEY must be at least 16/])
  t.match(configProblems({ ...REQUIRED_ENVIRONMENT, ADMIN_API_KEY: SSFS_KEY }), [/ADMIN_API_KEY must differ from SSFS_API_KEY/])
  t.same(configProblems({ ...REQUIRED_ENVIRONMENT, ADMIN_API_KEY: ADMIN_KEY }), [])
  t.equal(loadConfig(REQUIRED_ENVIRONMENT).admin.apiKey, undefined, 'optional')
})

t.test('without ADMIN_API_KEY there is no admin surface: every /admin path is a 404, and the docs name none', async (t) => {
  const base = await listeningApi(t, {})
  for (const path of ['/admin/parked', '/admin/sync', '/admin/queues', '/admin/queues/api/queues']) {
    const response = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${SSFS_KEY}` } })
    t.equal(response.status, 404, path)
    t.equal(response.headers.get('www-authenticate'), null, 'no challenge either')
  }
  const docs = await (await fetch(`${base}/docs/json`)).json() as { paths: Record<string, unknown>, components: { securitySchemes: Record<string, unknown> } }
  t.same(Object.keys(docs.paths).filter((path) => path.startsWith('/admin')), [])
  t.notOk('adminBearer' in docs.components.securitySchemes)
})

t.test('with ADMIN_API_KEY', async (t) => {
  const base = await listeningApi(t, { ADMIN_API_KEY: ADMIN_KEY })

  t.test('no credentials, a wrong key, or the SSFS key: 401 with a Basic challenge, so a browser prompts', async (t) => {
    const attempts: Array<[string, Record<string, string>]> = [
      ['no credentials', {}],
      ['a wrong bearer key', { authorization: 'Bearer not-the-admin-key-at-all' }],
      ['the SSFS key as x-api-key', { 'x-api-key': SSFS_KEY }],
      ['the SSFS key as a bearer token', { authorization: `Bearer ${SSFS_KEY}` }],
      ['the SSFS key as the Basic password', { authorization: basic('ops', SSFS_KEY) }],
      ['the admin key as the Basic user name', { authorization: basic(ADMIN_KEY, 'x') }],
      ['the admin key with a character more', { authorization: `Bearer ${ADMIN_KEY}x` }],
      ['an unknown scheme', { authorization: `Token ${ADMIN_KEY}` }]
    ]
    for (const [what, headers] of attempts) {
      for (const path of ['/admin/parked', '/admin/queues', '/admin/queues/api/queues', '/admin/queues/static/favicon-32x32.png']) {
        const response = await fetch(`${base}${path}`, { headers })
        t.equal(response.status, 401, `${what}: ${path}`)
        t.equal(response.headers.get('www-authenticate'), ADMIN_REALM_CHALLENGE, `${what}: ${path} challenges`)
        t.match(await response.json(), { statusCode: 401, code: 'ADMIN_UNAUTHORIZED' })
      }
    }
  })

  t.test('the admin key as a bearer token, or as Basic\'s password with any user name, opens it', async (t) => {
    for (const authorization of [`Bearer ${ADMIN_KEY}`, `bearer ${ADMIN_KEY}`, basic('ops', ADMIN_KEY), basic('', ADMIN_KEY), basic('anyone at all', ADMIN_KEY)]) {
      const response = await fetch(`${base}/admin/parked`, { headers: { authorization } })
      t.equal(response.status, 200, authorization.split(' ')[0] ?? '')
      t.same(await response.json(), { entries: [], more: false })
    }
  })

  t.test('a path under /admin that is not served asks for the key too, so none tells which exist; with the key it is a 404', async (t) => {
    for (const path of ['/admin/nothing', '/admin/queues/static/no-such-asset.js', '/admin/queues/x/y']) {
      const closed = await fetch(`${base}${path}`)
      t.equal(closed.status, 401, `${path} without the key`)
      const open = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })
      t.equal(open.status, 404, `${path} with the key`)
      t.match(await open.json(), { statusCode: 404, code: 'NOT_FOUND' })
    }
  })

  t.test('the queue dashboard answers behind the auth, its assets too, and lists every queue of the registry', async (t) => {
    const headers = { authorization: basic('ops', ADMIN_KEY) }
    const page = await fetch(`${base}/admin/queues`, { headers })
    t.equal(page.status, 200)
    t.match(page.headers.get('content-type'), /text\/html/)
    const html = await page.text()
    t.match(html, '<base href="/admin/queues/"', 'its assets are under the admin prefix')
    const asset = await fetch(`${base}/admin/queues/static/favicon-32x32.png`, { headers })
    t.equal(asset.status, 200, 'an asset, with the key')

    const api = await fetch(`${base}/admin/queues/api/queues`, { headers })
    t.equal(api.status, 200)
    const { queues } = await api.json() as { queues: Array<{ name: string }> }
    t.same(queues.map((queue) => queue.name).sort(), Object.values(QUEUE).sort())
  })

  t.test('the OpenAPI document: every admin route under the admin tag, with its security and examples; the dashboard hidden', async (t) => {
    const docs = await (await fetch(`${base}/docs/json`)).json() as {
      paths: Record<string, Record<string, { tags?: string[], security?: unknown, responses: Record<string, unknown> }>>
      components: { securitySchemes: Record<string, unknown> }
    }
    t.same(docs.components.securitySchemes.adminBearer, { type: 'http', scheme: 'bearer' })
    t.same(docs.components.securitySchemes.adminBasic, { type: 'http', scheme: 'basic' })
    const adminRoutes = Object.entries(docs.paths).filter(([path]) => path.startsWith('/admin'))
      .flatMap(([path, methods]) => Object.entries(methods).map(([method, operation]) => ({ route: `${method.toUpperCase()} ${path}`, operation })))
    t.same(adminRoutes.map(({ route }) => route).sort(), [
      'DELETE /admin/parked', 'DELETE /admin/parked/{id}',
      'GET /admin/explain/person/{idOrEmail}', 'GET /admin/explain/record/{table}/{id}',
      'GET /admin/parked', 'GET /admin/parked/{id}',
      'GET /admin/sync', 'POST /admin/explain/person', 'POST /admin/parked/retry', 'POST /admin/parked/{id}/retry',
      'POST /admin/resync/person', 'POST /admin/resync/record',
      'POST /admin/sync/{direction}/pause', 'POST /admin/sync/{direction}/resume'
    ], 'the admin API, and no dashboard route')
    for (const { route, operation } of adminRoutes) {
      t.same(operation.tags, ['admin'], `${route}: tag`)
      t.same(operation.security, [{ adminBearer: [] }, { adminBasic: [] }], `${route}: security`)
      // @fastify/swagger moves a response schema's `examples` to its media type's.
      t.match(JSON.stringify(operation.responses['200'] ?? {}), /"examples?"/, `${route}: its answer has examples`)
    }
  })
})

t.test('isCrossSite: a page of another site is told apart from the admin pages and from clients that are not browsers', async (t) => {
  t.equal(isCrossSite({ 'sec-fetch-site': 'cross-site' }, 'sync.example.com'), true)
  t.equal(isCrossSite({ 'sec-fetch-site': 'same-site' }, 'sync.example.com'), true, 'a sibling subdomain is another site for this purpose')
  t.equal(isCrossSite({ 'sec-fetch-site': 'same-origin', origin: 'https://evil.example' }, 'sync.example.com'), false, 'Fetch Metadata wins where the browser sends it')
  t.equal(isCrossSite({ 'sec-fetch-site': 'none' }, 'sync.example.com'), false, 'typed by the person')
  t.equal(isCrossSite({ origin: 'https://evil.example' }, 'sync.example.com'), true)
  t.equal(isCrossSite({ origin: 'https://sync.example.com' }, 'sync.example.com'), false, 'same host behind a TLS-terminating proxy')
  t.equal(isCrossSite({}, 'sync.example.com'), false, 'curl and scripts send neither')
})

t.test('a state-changing admin request from another site\'s page is refused (403), even with the key; the admin pages\' own and curl\'s go through', async (t) => {
  const base = await listeningApi(t, { ADMIN_API_KEY: ADMIN_KEY })
  const pause = async (headers: Record<string, string>) => await fetch(`${base}/admin/sync/marketo-to-dynamics/pause`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_KEY}`, ...headers } })
  const forged = await pause({ 'sec-fetch-site': 'cross-site', origin: 'https://evil.example' })
  t.equal(forged.status, 403)
  t.match(await forged.json(), { statusCode: 403, code: 'ADMIN_CROSS_SITE_REQUEST' })
  const sync = await (await fetch(`${base}/admin/sync`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).json() as { directions: Array<{ direction: string, paused: boolean }> }
  t.notOk(sync.directions.some((direction) => direction.direction === 'marketo-to-dynamics' && direction.paused), 'nothing was paused')
  t.equal((await pause({ 'sec-fetch-site': 'same-origin' })).status, 200, 'the status page\'s own request')
  t.equal((await fetch(`${base}/admin/sync/marketo-to-dynamics/resume`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_KEY}` } })).status, 200, 'curl: no browser headers')
})
