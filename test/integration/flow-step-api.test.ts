import t from 'tap'
import { createServer } from 'node:http'
import { once } from 'node:events'
import { startFlowStepHarness, eventually } from '../helpers/flow-step-harness.ts'
import { SANDBOX_USERS } from '../../sandbox/start-sandbox.ts'
import { startLocalRedis } from '../../sandbox/redis-server.ts'
import { assignToPicklistCacheKey } from '../../src/queue/redis-keys.ts'
import Fastify from 'fastify'
import pino from 'pino'
import { Redis } from 'ioredis'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import flowStepRoutes from '../../routes/flow-step.ts'
import { replyWithError } from '../../src/http/error-handler.ts'
import { AssignToChoices } from '../../src/flow-step/assign-to-choices.ts'
import { createCallbackCredentialsBox, createDataverseClient } from '../../src/runtime/service-clients.ts'

/**
 * The flow step's HTTP surface as Marketo and developers meet it: authentication, validation,
 * the callback allow-list, picklists, status, the API definition and the docs. No worker runs
 * in this file (but where one is started), so what the API accepted stays in the intake stream
 * to be inspected.
 */

const h = await startFlowStepHarness(t, { withWorker: false, env: { WORKER_CONCURRENCY: '1' } })
const base = h.sandbox.publicUrl
const key = h.config.ssfs.apiKey

const invocation = (overrides: Record<string, unknown> = {}) => ({
  token: `tok-${Math.random().toString(36).slice(2)}`,
  batchid: 'b-1',
  apiCallBackKey: 'callback-key',
  campaignId: 1001,
  callbackUrl: h.sandbox.marketo.callbackUrl,
  context: { subscription: { munchkinId: '123-ABC-456' } },
  objectData: [{ objectType: 'lead', objectContext: { id: 5001, email: 'api.test@example.com' }, flowStepContext: { syncAs: 'Lead' } }],
  ...overrides
})

async function submit (body: unknown, headers: Record<string, string> = {}): Promise<{ status: number, json: Record<string, unknown> }> {
  const response = await fetch(`${base}/submitAsyncAction`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': key, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body)
  })
  return { status: response.status, json: await response.json() as Record<string, unknown> }
}

const queuedCount = async () => await h.intake.backlog()

t.test('a valid invocation is answered 201 at once and appended to the intake as one entry', async (t) => {
  const before = await queuedCount()
  const { status, json } = await submit(invocation())
  t.equal(status, 201)
  t.match(json, { accepted: true, persons: 1, invocationId: /^inv-[0-9a-f]{40}$/ })
  t.equal(await queuedCount(), before + 1)
})

t.test('a wrong or missing API key is refused with 401 and a JSON error', async (t) => {
  for (const headers of [{ 'x-api-key': 'wrong-key-of-some-length' }, { 'x-api-key': '' }, { 'x-api-key': key.slice(0, -1) }]) {
    const { status, json } = await submit(invocation(), headers)
    t.equal(status, 401)
    t.match(json, { statusCode: 401, code: 'UNAUTHORIZED', message: /x-api-key/ })
  }
  const response = await fetch(`${base}/submitAsyncAction`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(invocation()) })
  t.equal(response.status, 401, 'no key at all')
  t.equal((await fetch(`${base}/status`)).status, 401, '/status checks the key too (Marketo verifies credentials with it)')
})

t.test('a malformed body is refused with 400 naming the problem, and nothing is queued', async (t) => {
  const before = await queuedCount()
  const cases: Array<[unknown, RegExp]> = [
    [invocation({ campaignId: 'one' }), /campaignId/],
    [invocation({ callbackUrl: undefined }), /callbackUrl/],
    [invocation({ callbackUrl: 'not a url' }), /callbackUrl/],
    [invocation({ objectData: [{ objectType: 'lead', objectContext: {} }] }), /id/],
    [invocation({ objectData: [{ objectType: 'account', objectContext: { id: 1 } }] }), /objectType/],
    [invocation({ objectData: [{ objectType: 'lead', objectContext: { id: 1, email: { nested: true } } }] }), /email/],
    [invocation({ objectData: [{ objectType: 'lead', objectContext: { id: 1 }, flowStepContext: { syncAs: 'Account' } }] }), /syncAs/],
    ['{"campaignId": 1,', /JSON/i],
    [[1, 2, 3], /object/],
    ['{"__proto__": {"polluted": true}, "campaignId": 1, "callbackUrl": "https://x.test/"}', /not valid JSON/i]
  ]
  for (const [body, problem] of cases) {
    const { status, json } = await submit(body)
    t.equal(status, 400, `400 for ${JSON.stringify(body).slice(0, 80)}`)
    t.match(json, { statusCode: 400, code: String, message: problem })
  }
  const wrongType = await fetch(`${base}/submitAsyncAction`, { method: 'POST', headers: { 'content-type': 'text/plain', 'x-api-key': key }, body: 'hello' })
  t.equal(wrongType.status, 415)
  t.match(await wrongType.json(), { code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE' })
  t.equal(await queuedCount(), before)
})

t.test('an invocation that could never be called back is refused with 400 naming what is missing, and nothing is queued', async (t) => {
  const before = await queuedCount()
  const without = (name: string) => { const body: Record<string, unknown> = invocation(); delete body[name]; return body }
  const cases: Array<[string, unknown, RegExp]> = [
    ['no token', without('token'), /token/],
    ['an empty token', invocation({ token: '' }), /token/],
    ['no apiCallBackKey', without('apiCallBackKey'), /apiCallBackKey/],
    ['an empty apiCallBackKey', invocation({ apiCallBackKey: '' }), /apiCallBackKey/],
    ['no context', without('context'), /context/],
    ['no subscription', invocation({ context: { admin: {} } }), /subscription/],
    ['no munchkinId', invocation({ context: { subscription: { prefix: 'x' } } }), /munchkinId/],
    ['an empty munchkinId', invocation({ context: { subscription: { munchkinId: '' } } }), /munchkinId/],
    // What cannot travel in the callback's x-callback-token / x-api-key headers (RFC 9110 §5.5).
    ['a token with CR LF (header injection)', invocation({ token: 'tok\r\nx-evil: 1' }), /token/],
    ['a token with LF', invocation({ token: 'tok\nx' }), /token/],
    ['a token with NUL', invocation({ token: 'tok\u0000x' }), /token/],
    ['a token with a control character', invocation({ token: 'tok\u0001x' }), /token/],
    ['a token with DEL', invocation({ token: 'tok\u007fx' }), /token/],
    ['a token past ASCII', invocation({ token: 'tokén' }), /token/],
    ['a token past Latin-1', invocation({ token: 'tok\u2603' }), /token/],
    ['a token with a leading space (fetch would trim it)', invocation({ token: ' tok' }), /token/],
    ['a token with a trailing tab', invocation({ token: 'tok\t' }), /token/],
    ['only spaces', invocation({ token: '   ' }), /token/],
    ['an apiCallBackKey with CR', invocation({ apiCallBackKey: 'key\rx' }), /apiCallBackKey/],
    ['an apiCallBackKey past ASCII', invocation({ apiCallBackKey: 'clé' }), /apiCallBackKey/],
    ['a munchkinId with a newline', invocation({ context: { subscription: { munchkinId: '123\nABC' } } }), /munchkinId/]
  ]
  for (const [what, body, problem] of cases) {
    const { status, json } = await submit(body)
    t.equal(status, 400, `400 for ${what}`)
    t.match(json, { statusCode: 400, code: 'FST_ERR_VALIDATION', message: problem }, `the message names the field (${what})`)
  }
  t.equal(await queuedCount(), before, 'nothing queued')

  // Spaces and tabs inside a value travel in a header unchanged: accepted.
  const inner = await submit(invocation({ token: 'tok with\tinner space', apiCallBackKey: 'a b' }))
  t.equal(inner.status, 201)
})

t.test('a JSON body declared in a charset other than UTF-8 is refused with 415; UTF-8 and no charset are accepted', async (t) => {
  const before = await queuedCount()
  for (const contentType of ['application/json; charset=latin1', 'application/json; charset=ISO-8859-1', 'application/json;charset="utf-16"', 'application/json; Charset=us-ascii']) {
    const { status, json } = await submit(invocation(), { 'content-type': contentType })
    t.equal(status, 415, `415 for ${contentType}`)
    t.match(json, { statusCode: 415, code: 'UNSUPPORTED_CHARSET', message: /UTF-8/ })
  }
  t.equal(await queuedCount(), before, 'nothing queued')
  const utf8 = ['application/json; charset=utf-8', 'application/json; charset=UTF-8', 'application/json;charset="utf-8"', 'application/json; charset=utf8', 'application/json']
  for (const contentType of utf8) {
    const { status } = await submit(invocation(), { 'content-type': contentType })
    t.equal(status, 201, `201 for ${contentType}`)
  }
  t.equal(await queuedCount(), before + utf8.length)
})

t.test('a callback URL off the allow-list is refused and its host is never contacted', async (t) => {
  let contacted = 0
  const evil = createServer((_req, res) => { contacted++; res.end() })
  evil.listen(0, '127.0.0.1')
  await once(evil, 'listening')
  t.teardown(() => { evil.close() })
  const port = (evil.address() as { port: number }).port
  const before = await queuedCount()
  for (const callbackUrl of [
    `http://127.0.0.1:${port}/cb`,
    `http://localhost:${new URL(h.sandbox.marketo.url).port}/cb`,
    `https://127.0.0.1:${new URL(h.sandbox.marketo.url).port}/cb`,
    `${h.sandbox.marketo.url}@127.0.0.1:${port}/cb`,
    'ftp://127.0.0.1/cb'
  ]) {
    const { status, json } = await submit(invocation({ callbackUrl }))
    t.equal(status, 400, `${callbackUrl} refused`)
    t.match(json, { code: /CALLBACK_URL_REFUSED|FST_ERR_VALIDATION/ })
  }
  t.equal(await queuedCount(), before, 'nothing queued, so no worker will ever call it')
  t.equal(contacted, 0)
})

t.test('trigger-campaign invocations are queued ahead of batch-campaign ones', async (t) => {
  const before = await queuedCount()
  const batch = await submit(invocation({ objectData: [{ objectType: 'lead', objectContext: { id: 6001, email: 'batch.first@example.com' } }] }))
  const trigger = await submit(invocation({ objectData: [{ objectType: 'lead', objectContext: { id: 6002, email: 'trigger.second@example.com' }, triggeringContext: { name: 'Form', triggerName: 'Fills Out Form' } }] }))
  t.equal(await queuedCount(), before + 2, 'both wait in the intake while no worker runs')

  // A worker's mover turns both entries into jobs in one batch; with concurrency 1 the worker
  // then takes the trigger job first, though it came second.
  const order: string[] = []
  const worker = h.startWorker()
  t.teardown(async () => { await worker.close() })
  const [batchJob, triggerJob] = await eventually(async () => {
    const jobs = await Promise.all([batch, trigger].map(async (r) => await h.queues.flowStep.getJob(`flow-step-${String(r.json.invocationId)}`)))
    return jobs.every((job) => job !== undefined) ? jobs : undefined
  }, { what: 'both invocations moved into the flow-step queue' })
  t.ok(triggerJob!.opts.priority! < batchJob!.opts.priority!, 'the trigger job has the higher priority (lower number)')
  t.equal(triggerJob!.data.triggered, true)
  t.equal(batchJob!.data.triggered, false)
  await eventually(async () => {
    for (const job of [batchJob!, triggerJob!]) {
      const state = await h.queues.flowStep.getJobState(job.id!)
      if (state === 'completed' || state === 'failed') {
        const finished = await h.queues.flowStep.getJob(job.id!)
        if (!order.includes(job.id!) && finished?.processedOn !== undefined) order.push(job.id!)
      }
    }
    return order.length === 2 ? true : undefined
  }, { what: 'both jobs processed' })
  const processedOn = async (id: string) => (await h.queues.flowStep.getJob(id))!.processedOn!
  t.ok(await processedOn(triggerJob!.id!) <= await processedOn(batchJob!.id!), 'the trigger job started first')
})

t.test('Assign To lists the enabled Dynamics users, cached so Dynamics is asked once', async (t) => {
  const ask = async () => await fetch(`${base}/getPicklist`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': key },
    body: JSON.stringify({ name: 'assignTo', type: 'flow' })
  })
  const before = h.sandbox.dataverse.requestCount({ entitySet: 'systemusers' })
  const first = await ask()
  t.equal(first.status, 200)
  const { choices } = await first.json() as { choices: Array<{ displayValue: { en_US: string }, submittedValue: string }> }
  t.same(choices.map((c) => c.displayValue.en_US), ['Alex Admin', 'Dana Seller', 'Sam Support'])
  t.ok(choices.some((c) => c.submittedValue === SANDBOX_USERS.dana.systemuserid))
  t.equal((await ask()).status, 200)
  t.equal(h.sandbox.dataverse.requestCount({ entitySet: 'systemusers' }) - before, 1, 'one Dataverse request for two picklist calls')

  const syncAs = await fetch(`${base}/getPicklist`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': key }, body: JSON.stringify({ name: 'syncAs', type: 'flow' }) })
  t.same((await syncAs.json() as { choices: Array<{ submittedValue: string }> }).choices.map((c) => c.submittedValue), ['Lead', 'Contact'])
  h.sandbox.dataverse.faults.failNext(1000, 503)
  await h.redis.del(assignToPicklistCacheKey(h.config.redis.keyPrefix))
  const outage = await ask()
  h.sandbox.dataverse.faults.clear()
  t.equal(outage.status, 503, 'a Dynamics outage is a 503 Marketo retries, not a 500')
  t.match(await outage.json(), { code: 'DYNAMICS_UNAVAILABLE' })

  const unknown = await fetch(`${base}/getPicklist`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': key }, body: JSON.stringify({ name: 'colour', type: 'flow' }) })
  t.equal(unknown.status, 400)
  t.match(await unknown.json(), { code: 'UNKNOWN_PICKLIST' })
})

t.test('a corrupted Assign To cache is a miss: Dynamics is asked again and the cache overwritten, never a 500', async (t) => {
  const cacheKey = assignToPicklistCacheKey(h.config.redis.keyPrefix)
  for (const junk of ['not json', '{"choices":[]}', '[{"displayValue":"Alex","submittedValue":"x"}]', '[{"displayValue":{"en_US":1},"submittedValue":"x"}]', '[{"displayValue":{"en_US":"A"}}]', 'null', '[', '"a string"']) {
    await h.redis.set(cacheKey, junk, 'EX', 600)
    const before = h.sandbox.dataverse.requestCount({ entitySet: 'systemusers' })
    const response = await fetch(`${base}/getPicklist`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': key }, body: JSON.stringify({ name: 'assignTo', type: 'flow' }) })
    t.equal(response.status, 200, `200 with ${junk} in the cache`)
    const { choices } = await response.json() as { choices: Array<{ displayValue: { en_US: string } }> }
    t.same(choices.map((c) => c.displayValue.en_US), ['Alex Admin', 'Dana Seller', 'Sam Support'])
    t.equal(h.sandbox.dataverse.requestCount({ entitySet: 'systemusers' }) - before, 1, 'Dynamics asked again')
    t.same(JSON.parse(await h.redis.get(cacheKey) ?? 'null'), choices, 'the junk is overwritten with the fresh list')
  }
})

t.test('/getPicklist does not wait on a slow Dynamics past its deadline: a 503 naming why, and the read still fills the cache', async (t) => {
  const cacheKey = assignToPicklistCacheKey(h.config.redis.keyPrefix)
  await h.redis.del(cacheKey)
  const silent = pino({ level: 'silent' })
  const app = Fastify()
  app.setErrorHandler(replyWithError)
  await app.register(flowStepRoutes, {
    apiKey: key,
    intake: h.intake,
    callbackHosts: h.config.ssfs.callbackHosts,
    callbackCredentialsBox: createCallbackCredentialsBox(h.config),
    assignToChoices: new AssignToChoices(createDataverseClient(h.config, silent), h.redis, cacheKey, silent, { timeoutMs: 500 })
  })
  t.teardown(async () => { await app.close() })
  h.sandbox.dataverse.faults.setLatency(2_500)
  t.teardown(() => { h.sandbox.dataverse.faults.clear() })
  const started = Date.now()
  const response = await app.inject({ method: 'POST', url: '/getPicklist', headers: { 'x-api-key': key }, payload: { name: 'assignTo', type: 'flow' } })
  const tookMs = Date.now() - started
  h.sandbox.dataverse.faults.clear()
  t.equal(response.statusCode, 503)
  t.match(response.json(), { statusCode: 503, code: 'DYNAMICS_TIMEOUT', message: /did not list its users within 0.5 s/ })
  t.ok(tookMs < 2_000, `answered after ${tookMs} ms, not when Dynamics did`)
  await eventually(async () => await h.redis.get(cacheKey) ?? undefined, { what: 'the late read to fill the cache' })
  const again = await app.inject({ method: 'POST', url: '/getPicklist', headers: { 'x-api-key': key }, payload: { name: 'assignTo', type: 'flow' } })
  t.equal(again.statusCode, 200, 'the next try is answered from the cache')
})

t.test('the service definition declares the flow attributes, the person fields it reads and the fields its callback writes', async (t) => {
  const definition = await (await fetch(`${base}/getServiceDefinition`)).json() as Record<string, any>
  t.equal(definition.apiName, 'syncPersonToMicrosoft')
  t.equal(definition.i18n.en_US.name, 'Sync Person to Microsoft')
  const flow = definition.invocationPayloadDef.flowAttributes as Array<Record<string, unknown>>
  t.match(flow.find((a) => a.apiName === 'assignTo'), { hasPicklist: true, enforcePicklistSelect: true, picklistUrl: `${base}/getPicklist` })
  t.match(flow.find((a) => a.apiName === 'syncAs'), { hasPicklist: true, enforcePicklistSelect: true })
  const fields = (definition.invocationPayloadDef.fields as Array<{ serviceAttribute: string }>).map((f) => f.serviceAttribute)
  for (const name of ['email', 'firstName', 'lastName', 'company', 'title', 'phone']) t.ok(fields.includes(name), `reads ${name}`)
  const written = (definition.callbackPayloadDef.fields as Array<{ serviceAttribute: string }>).map((f) => f.serviceAttribute)
  t.same(written, ['microsoftRecordId', 'microsoftType'])
})

t.test('the API definition is served with PUBLIC_URL as its server; status, icons and docs answer', async (t) => {
  const document = await (await fetch(`${base}/openapi.json`)).json() as { servers: Array<{ url: string }>, info: Record<string, string> }
  t.same(document.servers, [{ url: base }])
  t.equal(document.info['x-schemaVersion'], '1.0.0')

  const status = await fetch(`${base}/status`, { headers: { 'x-api-key': key } })
  t.equal(status.status, 200)
  t.match(await status.json(), { info: Array, warnings: [], errors: [] })

  for (const icon of ['/serviceIcon', '/brandIcon']) {
    const response = await fetch(`${base}${icon}`)
    t.equal(response.status, 200)
    t.match(response.headers.get('content-type'), /^image\//)
  }

  const ui = await fetch(`${base}/docs`, { redirect: 'follow' })
  t.equal(ui.status, 200)
  t.match(await ui.text(), /swagger/i)
  const spec = await (await fetch(`${base}/docs/json`)).json() as { paths: Record<string, Record<string, { requestBody?: unknown, responses?: unknown }>> }
  for (const path of ['/submitAsyncAction', '/getPicklist', '/getServiceDefinition', '/status', '/openapi.json', '/serviceIcon', '/brandIcon', '/health/live', '/health/ready']) {
    t.ok(spec.paths[path], `${path} is in the docs`)
  }
  t.ok(spec.paths['/submitAsyncAction']?.post?.requestBody, 'with its body schema')
})

/** Every (method, path) the built app serves, read from its route tree (`printRoutes`). */
function servedRoutes (tree: string): Array<{ method: string, path: string }> {
  const routes: Array<{ method: string, path: string }> = []
  const prefixes: string[] = []
  for (const line of tree.split('\n')) {
    const match = /^(.*?)(?:├── |└── )(.*?)(?: \(([A-Z, ]+)\))?$/.exec(line)
    if (match === null) continue
    const depth = match[1]!.length / 4
    prefixes.length = depth
    const path = `${prefixes.join('')}${match[2]!}`
    prefixes.push(match[2]!)
    for (const method of (match[3] ?? '').split(', ').filter((m) => m !== '' && m !== 'HEAD')) routes.push({ method, path })
  }
  return routes
}

t.test('the served definitions and the routes agree on which routes need the key', async (t) => {
  const routes = servedRoutes(h.app.printRoutes({ commonPrefix: false }))
  t.ok(routes.length >= 12, `${routes.length} routes found`)
  type Operation = { security?: unknown[] }
  type Document = { security?: unknown[], paths: Record<string, Record<string, Operation>> }
  const swagger = await (await fetch(`${base}/docs/json`)).json() as Document
  const ssfs = await (await fetch(`${base}/openapi.json`)).json() as Document
  const needsKey = (document: Document, method: string, path: string): boolean | undefined => {
    const operation = document.paths[path]?.[method.toLowerCase()]
    if (operation === undefined) return undefined
    return (operation.security ?? document.security ?? []).length > 0
  }
  const documented = new Set<string>()
  for (const { method, path } of routes) {
    // Parameters and wildcards (Swagger UI's static files) get a harmless concrete value.
    const url = path.replace(/\*$/, 'index.html').replace(/:[^/]+/g, 'x')
    const response = await fetch(`${base}${url}`, {
      method,
      redirect: 'manual',
      ...(method === 'POST' ? { headers: { 'content-type': 'application/json' }, body: '{}' } : {})
    })
    await response.arrayBuffer()
    const refused = response.status === 401
    // OpenAPI writes a path parameter `{id}` where the route tree has `:id`.
    const documentedPath = path.replace(/:([^/]+)/g, '{$1}')
    const inSwagger = needsKey(swagger, method, documentedPath)
    const inSsfs = needsKey(ssfs, method, path)
    if (inSwagger !== undefined) documented.add(`${method} ${documentedPath}`)
    // The admin surface (the sandbox sets ADMIN_API_KEY) is closed without its key, the queue dashboard's hidden routes too.
    const undocumentedRefused = path === '/admin' || path.startsWith('/admin/')
    t.equal(refused, inSwagger ?? undocumentedRefused, `${method} ${path}: ${refused ? '401 without the key' : `${response.status} without the key`}, as the Swagger document says${inSwagger === undefined ? (undocumentedRefused ? ' (undocumented: the admin dashboard)' : ' (undocumented: must be public)') : ''}`)
    if (inSsfs !== undefined) t.equal(refused, inSsfs, `${method} ${path}: as /openapi.json says`)
  }
  for (const [path, operations] of Object.entries(swagger.paths)) {
    for (const method of Object.keys(operations)) t.ok(documented.has(`${method.toUpperCase()} ${path}`), `${method.toUpperCase()} ${path} is documented and served`)
  }
  for (const [path, operations] of Object.entries(ssfs.paths)) {
    for (const method of Object.keys(operations)) t.ok(routes.some((r) => r.path === path && r.method === method.toUpperCase()), `${method.toUpperCase()} ${path} of /openapi.json is served`)
  }
})

t.test('each request leaves one access-log line at info: method, route, status, duration, request id, nothing personal', async (t) => {
  const infoLines = () => h.logs().filter((line) => line.level === 30)
  const accessLines = () => h.logs().filter((line) => line.msg === 'request')
  const linesOf = async (send: () => Promise<Response>) => {
    const before = h.logs().length
    const response = await send()
    await response.arrayBuffer()
    // The line is written once the response has gone, which can be just after the client has it.
    return await eventually(() => {
      const fresh = h.logs().slice(before)
      return fresh.some((line) => line.msg === 'request') ? fresh : undefined
    }, { what: 'the access-log line' })
  }
  const email = 'access.log.person@example.com'
  const token = `secret-token-${Math.random().toString(36).slice(2)}`
  const post = (path: string, body: unknown) => async () => await fetch(`${base}${path}`, {
    method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': key }, body: JSON.stringify(body)
  })
  const personal = invocation({ token, objectData: [{ objectType: 'lead', objectContext: { id: 7001, email } }] })
  const cases: Array<[string, () => Promise<Response>, Record<string, unknown>]> = [
    ['accepted', post('/submitAsyncAction?email=query.person@example.com', personal), { method: 'POST', route: '/submitAsyncAction', statusCode: 201 }],
    ['refused', post('/submitAsyncAction', { ...personal, campaignId: 'x' }), { method: 'POST', route: '/submitAsyncAction', statusCode: 400, code: 'FST_ERR_VALIDATION' }],
    ['unauthorised', async () => await fetch(`${base}/status?key=${key}`), { method: 'GET', route: '/status', statusCode: 401, code: 'UNAUTHORIZED' }],
    ['no route', async () => await fetch(`${base}/nowhere/${encodeURIComponent(email)}?email=${encodeURIComponent(email)}`), { method: 'GET', route: null, statusCode: 404 }],
    ['health', async () => await fetch(`${base}/health/live`), { method: 'GET', route: '/health/live', statusCode: 200 }]
  ]
  for (const [what, send, expected] of cases) {
    const fresh = await linesOf(send)
    const access = fresh.filter((line) => line.msg === 'request')
    t.equal(access.length, 1, `one access line (${what})`)
    t.match(access[0], { level: 30, ...expected, reqId: String, durationMs: Number }, `its fields (${what})`)
    const requestLines = fresh.filter((line) => line.reqId === access[0]!.reqId)
    t.same(requestLines.filter((line) => line.level === 30).map((line) => line.msg), ['request'], `the only info line of that request (${what})`)
    t.notOk(fresh.some((line) => line.msg === 'incoming request' || line.msg === 'request completed'), `none of Fastify's own (${what})`)
    const text = JSON.stringify(access[0])
    for (const secret of [email, 'query.person', token, key, 'callback-key', '?', 'x-api-key', 'headers']) t.notOk(text.includes(secret), `no ${secret} in the line (${what})`)
  }
  t.ok(accessLines().length >= cases.length)
  t.ok(infoLines().every((line) => line.msg !== 'incoming request'))
})

t.test('while Redis is connected but not answering (CLIENT PAUSE), invocations get a 503 within the intake timeout and the client queue and heap stay bounded', async (t) => {
  const gc = (() => { setFlagsFromString('--expose-gc'); return runInNewContext('gc') as () => void })()
  const heapUsed = () => { gc(); return process.memoryUsage().heapUsed }
  const admin = new Redis(h.sandbox.env.REDIS_URL!)
  t.teardown(() => { admin.disconnect() })
  // Large invocations (100 persons, ~20 KB each in the intake) make a pile-up visible in the heap.
  const large = () => invocation({ objectData: Array.from({ length: 100 }, (_, i) => ({ objectType: 'lead', objectContext: { id: 900_000 + i, email: `paused.${i}@example.com`, firstName: 'Paused', lastName: `Person ${i}`, company: 'A company with a longer name', title: 'Title' } })) })
  // The harness runs one Redis, not a Cluster: its client queue is the one to watch.
  const apiRedis = h.redis as Redis
  let maxQueued = 0
  let slowest = 0
  const statuses = new Map<number, number>()
  const burst = async (total: number, concurrency: number) => {
    let next = 0
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (next++ < total) {
        const started = Date.now()
        const { status } = await submit(large())
        slowest = Math.max(slowest, Date.now() - started)
        statuses.set(status, (statuses.get(status) ?? 0) + 1)
        maxQueued = Math.max(maxQueued, apiRedis.commandQueue.length)
      }
    }))
  }
  const heapBefore = heapUsed()
  // Writes (the intake's XADD) paused until this test unpauses them, however long the bursts take on
  // a slow machine: a pause that ran out mid-burst would let Redis answer, and the test would no
  // longer be about a hung Redis. WRITE, not ALL: under ALL, Redis 7.0 holds CLIENT UNPAUSE itself
  // until the pause runs out.
  await admin.call('CLIENT', 'PAUSE', '600000', 'WRITE')
  t.teardown(async () => { await admin.call('CLIENT', 'UNPAUSE').catch(() => undefined) })
  await burst(1_500, 300)
  const heapAfterFirst = heapUsed()
  await burst(1_500, 300)
  const heapAfterSecond = heapUsed()
  const queuedWhilePaused = apiRedis.commandQueue.length
  await admin.call('CLIENT', 'UNPAUSE')

  t.same([...statuses.keys()], [503], 'every invocation during the pause is a 503 (never a 201 for unconfirmed work)')
  // Server-side, from each request's access-log line: the client shares this process and its
  // event loop with 300 concurrent connections, so its own clock adds queueing of its own.
  const served = h.logs().filter((line) => line.msg === 'request' && line.route === '/submitAsyncAction' && line.statusCode === 503).map((line) => line.durationMs as number)
  t.equal(served.length, 3_000)
  // Not a speed target: 2 s of intake timeout plus whatever a loaded machine adds, far below a hang.
  t.ok(Math.max(...served) < 10_000, `each answered after the intake timeout of 2 s, not held (slowest ${Math.max(...served)} ms in the API)`)
  t.ok(slowest < 30_000, `no request hung (slowest ${slowest} ms seen by the client)`)
  t.ok(maxQueued <= 520, `the client's command queue stayed bounded (at most ${maxQueued} for 3,000 invocations)`)
  t.ok(queuedWhilePaused <= 520, `${queuedWhilePaused} commands waiting at the end of the pause`)
  const mb = (bytes: number) => Math.round(bytes / 1024 / 1024)
  t.ok(heapAfterSecond - heapAfterFirst < 24 * 1024 * 1024, `the heap is flat from the first 1,500 to the next (${mb(heapBefore)} → ${mb(heapAfterFirst)} → ${mb(heapAfterSecond)} MB)`)

  await eventually(() => apiRedis.commandQueue.length === 0 ? true : undefined, { what: 'Redis to answer what waited' })
  const { status } = await submit(invocation())
  t.equal(status, 201, 'accepted again as soon as Redis answers')
})

t.test('while Redis is down the API answers 503 with a JSON error instead of hanging, and recovers by itself', async (t) => {
  const local = h.sandbox.redis.local!
  await local.stop()
  // The abort signal turns a hung request into a failure of this test.
  const response = await fetch(`${base}/submitAsyncAction`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': key },
    body: JSON.stringify(invocation()),
    signal: AbortSignal.timeout(10_000)
  })
  t.equal(response.status, 503)
  t.match(await response.json(), { statusCode: 503, code: 'QUEUE_UNAVAILABLE', message: /nothing was queued/ })
  t.equal((await fetch(`${base}/health/ready`)).status, 503)

  const restarted = await startLocalRedis({ port: local.port })
  t.teardown(async () => { await restarted.stop() })
  const accepted = await eventually(async () => {
    const { status } = await submit(invocation())
    return status === 201 ? status : undefined
  }, { what: 'the API to accept again after Redis came back' })
  t.equal(accepted, 201)
})
