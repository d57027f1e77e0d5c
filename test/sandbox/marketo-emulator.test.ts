import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import {
  CHANGE_DATA_VALUE_ACTIVITY_TYPE_ID,
  CallbackWaitTimeoutError,
  ServiceInstallError,
  startMarketoEmulator,
  type InstalledService,
  type InvocationPayload,
  type MarketoEmulator
} from '../../sandbox/marketo/index.ts'

/**
 * The SSFS side of the Marketo emulator over real HTTP (shared/reference/marketo-rest-and-ssfs.md
 * §1): install a tiny fake flow-step service, run trigger and batch campaigns against it, and
 * check what the callback endpoint accepts, refuses and writes.
 */

const SERVICE_API_KEY = 'service-key-123'
const MUNCHKIN_ID = '123-ABC-456'
const ASSIGN_TO = '3f1c2a56-0000-4000-8000-00000000aa01'

const serviceDefinition = {
  apiName: 'syncPersonToMicrosoft',
  i18n: { en_US: { name: 'Sync Person to Microsoft', filterName: 'Was Synced to Microsoft', triggerName: 'Is Synced to Microsoft', description: 'Creates the person in Dynamics' } },
  primaryAttribute: 'syncAs',
  invocationPayloadDef: {
    globalAttributes: [],
    flowAttributes: [
      { apiName: 'assignTo', i18n: { en_US: { name: 'Assign To' } }, dataType: 'string', hasPicklist: true },
      { apiName: 'syncAs', i18n: { en_US: { name: 'Sync As' } }, dataType: 'string', hasPicklist: true }
    ],
    fields: [
      { serviceAttribute: 'email', suggestedMarketoAttribute: 'email', description: { en_US: 'Email' }, dataType: 'email', required: true },
      { serviceAttribute: 'firstName', suggestedMarketoAttribute: 'firstName', description: { en_US: 'First name' }, dataType: 'string' },
      { serviceAttribute: 'lastName', description: { en_US: 'Last name' }, dataType: 'string' },
      { serviceAttribute: 'companyName', suggestedMarketoAttribute: 'company', description: { en_US: 'Company' }, dataType: 'string' }
    ],
    userDrivenMapping: false,
    programContext: false,
    campaignContext: true,
    triggerContext: true,
    programMemberContext: false,
    subscriptionContext: true
  },
  callbackPayloadDef: {
    attributes: [
      { apiName: 'outcome', i18n: { en_US: { name: 'Outcome' } }, dataType: 'string' },
      { apiName: 'dynamicsRecordId', i18n: { en_US: { name: 'Dynamics Record Id' } }, dataType: 'string' }
    ],
    fields: [
      { serviceAttribute: 'microsoftRecordId', suggestedMarketoAttribute: 'microsoftRecordId', description: { en_US: 'Dynamics id' }, dataType: 'string' },
      { serviceAttribute: 'microsoftType', suggestedMarketoAttribute: 'microsoftRecordType', description: { en_US: 'Lead or Contact' }, dataType: 'string' }
    ],
    userDrivenMapping: false
  }
}

interface ReceivedInvocation {
  readonly headers: IncomingMessage['headers']
  readonly body: InvocationPayload
}

type CallbackMode = 'none' | 'success'

/**
 * A minimal SSFS service: OpenAPI doc, /status and /getServiceDefinition behind the API key, and a
 * /submitAsyncAction that answers 201 and — in 'success' mode — then POSTs a callback, retrying
 * at once on a 5xx answer (up to 5 attempts).
 */
interface FakeFlowStepService {
  readonly openapiUrl: string
  readonly invocations: ReceivedInvocation[]
  callbackMode: CallbackMode
  invocationStatus: number
  close: () => Promise<void>
}

async function startFakeFlowStepService (t: Test): Promise<FakeFlowStepService> {
  const service: Omit<FakeFlowStepService, 'openapiUrl' | 'close'> = { invocations: [], callbackMode: 'success', invocationStatus: 201 }
  let baseUrl = ''
  const reply = (res: ServerResponse, status: number, body: unknown): void => {
    res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body))
  }
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      if (req.url === '/openapi.json') {
        return reply(res, 200, {
          openapi: '3.0.0',
          info: { title: 'Fake flow step', version: '1.0.0', 'x-providerName': 'Test', 'x-schemaVersion': '1.0.0', 'x-supportContact': 'ops@example.com' },
          servers: [{ url: baseUrl }],
          security: [{ apiKey: [] }],
          components: { securitySchemes: { apiKey: { type: 'apiKey', name: 'x-api-key', in: 'header' } } },
          paths: {}
        })
      }
      if (req.headers['x-api-key'] !== SERVICE_API_KEY) return reply(res, 401, { error: 'unauthorized' })
      if (req.url === '/status') return reply(res, 200, { info: [], warnings: [], errors: [] })
      if (req.url === '/getServiceDefinition') return reply(res, 200, serviceDefinition)
      if (req.url === '/submitAsyncAction' && req.method === 'POST') {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as InvocationPayload
        service.invocations.push({ headers: req.headers, body })
        res.on('finish', () => {
          if (service.callbackMode === 'success' && service.invocationStatus === 201) void deliverCallback(body)
        })
        res.writeHead(service.invocationStatus, { 'Content-Type': 'text/plain' }).end('Accepted:\n- Webhook created')
        return
      }
      reply(res, 404, { error: 'not found' })
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const fake: FakeFlowStepService = Object.assign(service, {
    openapiUrl: `${baseUrl}/openapi.json`,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  })
  t.teardown(() => fake.close())
  return fake
}

function successCallbackBody (invocation: InvocationPayload): unknown {
  return {
    munchkinId: invocation.context.subscription.munchkinId,
    objectData: invocation.objectData.map((item) => ({
      leadData: { id: item.objectContext.id, microsoftRecordId: `dyn-${item.objectContext.id}`, microsoftType: 'Lead', notDeclared: 'ignored' },
      activityData: { success: true, outcome: 'created', dynamicsRecordId: `dyn-${item.objectContext.id}`, notDeclared: 'ignored' }
    }))
  }
}

async function deliverCallback (invocation: InvocationPayload): Promise<void> {
  for (let attempt = 1; attempt <= 5; attempt++) {
    const response = await postCallback(invocation.callbackUrl, { token: invocation.token, key: invocation.apiCallBackKey }, successCallbackBody(invocation))
    if (response.status < 500) return
  }
}

async function postCallback (callbackUrl: string, auth: { token?: string, key?: string }, body: unknown): Promise<{ status: number, body: unknown }> {
  const headers: Record<string, string> = { 'Content-Type': 'application/json' }
  if (auth.token !== undefined) headers['x-callback-token'] = auth.token
  if (auth.key !== undefined) headers['x-api-key'] = auth.key
  const response = await fetch(callbackUrl, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) })
  return { status: response.status, body: await response.json() }
}

interface Scenario {
  readonly emu: MarketoEmulator
  readonly fake: FakeFlowStepService
  readonly service: InstalledService
  readonly ann: number
  readonly bo: number
  readonly cy: number
}

async function startScenario (t: Test, options: { now?: () => Date } = {}): Promise<Scenario> {
  const emu = await startMarketoEmulator({
    munchkinId: MUNCHKIN_ID,
    clients: [{ clientId: 'cid', clientSecret: 'secret' }],
    ...(options.now === undefined ? {} : { now: options.now })
  })
  t.teardown(() => emu.close())
  const fake = await startFakeFlowStepService(t)
  const service = await emu.installService({ openapiUrl: fake.openapiUrl, apiKey: SERVICE_API_KEY })
  return {
    emu,
    fake,
    service,
    ann: emu.persons.create({ email: 'ann.lee@example.com', firstName: 'Ann', lastName: 'Lee', company: 'Contoso' }),
    bo: emu.persons.create({ email: 'bo.chen@example.com', firstName: 'Bo' }),
    cy: emu.persons.create({ email: 'cy.diaz@example.com', firstName: 'Cy', lastName: 'Diaz' })
  }
}

function ssfsActivities (emu: MarketoEmulator, service: InstalledService, personId: number): ReturnType<MarketoEmulator['persons']['activities']> {
  return emu.persons.activities(personId).filter((activity) => activity.activityTypeId === service.activityTypeId)
}

t.test('install: the status check uses the API key, and a wrong key fails the install', async (t) => {
  const { emu, fake, service } = await startScenario(t)
  t.equal(service.definition.apiName, 'syncPersonToMicrosoft')
  t.equal(service.baseUrl, new URL(fake.openapiUrl).origin, 'servers[0].url is the service base')
  t.equal(service.activityTypeId, 100001)
  await t.rejects(emu.installService({ openapiUrl: fake.openapiUrl, apiKey: 'wrong' }), ServiceInstallError)
  await t.rejects(emu.installService({ openapiUrl: fake.openapiUrl, apiKey: 'wrong' }), { code: 'SERVICE_INSTALL_STATUS_CHECK_FAILED' })
})

t.test('a trigger campaign invokes once per person with Marketo\'s payload, and the callback writes fields and activities', async (t) => {
  const { emu, fake, service, ann, bo } = await startScenario(t)

  const run = await emu.runCampaign(service, { campaignId: 4242, personIds: [ann, bo], flowStepContext: { assignTo: ASSIGN_TO, syncAs: 'Lead', stray: 'x' }, kind: 'trigger' })

  t.equal(run.invocations.length, 2, 'one invocation per person')
  t.same(run.invocations.map((invocation) => invocation.status), [201, 201])
  t.not(run.invocations[0]?.token, run.invocations[1]?.token, 'each invocation has its own one-time token')
  const received = fake.invocations[0]
  t.equal(received?.headers['x-api-key'], SERVICE_API_KEY)
  t.match(received?.headers['content-type'], /^application\/json/)
  const payload = received?.body
  t.match(payload, {
    token: /^[0-9a-f-]{36}$/,
    batchid: /^[0-9a-f-]{36}$/,
    apiCallBackKey: String,
    campaignId: 4242,
    callbackUrl: emu.callbackUrl,
    context: { subscription: { munchkinId: MUNCHKIN_ID, prefix: String }, admin: {}, campaign: { id: 4242, type: 'trigger' } }
  })
  t.notOk('program' in (payload?.context ?? {}), 'programContext: false → no program context')
  t.same(payload?.objectData, [{
    objectType: 'lead',
    objectContext: { id: ann, email: 'ann.lee@example.com', firstName: 'Ann', lastName: 'Lee', companyName: 'Contoso' },
    flowStepContext: { assignTo: ASSIGN_TO, syncAs: 'Lead' },
    triggeringContext: { name: 'Contact Us Form', triggerName: 'Fills Out Form' }
  }], 'mapped fields by service attribute; only declared flow attributes')

  const callbacks = await Promise.all(run.invocations.map((invocation) => emu.waitForCallback(invocation.token, { timeoutMs: 5000 })))
  t.same(callbacks.map((callback) => callback.status), [202, 202])

  const person = emu.persons.get(ann)
  t.equal(person?.microsoftRecordId, `dyn-${ann}`, 'declared field written under its suggested Marketo name')
  t.equal(person?.microsoftRecordType, 'Lead', 'serviceAttribute microsoftType → suggestedMarketoAttribute microsoftRecordType')
  t.notOk('notDeclared' in (person ?? {}), 'undeclared leadData keys are not written')
  const changes = emu.persons.activities(ann).filter((activity) => activity.activityTypeId === CHANGE_DATA_VALUE_ACTIVITY_TYPE_ID)
  t.equal(changes.length, 2, 'one Data Value Change per written field')
  t.match(changes[0]?.attributes, [
    { name: 'New Value', value: `dyn-${ann}` },
    { name: 'Old Value', value: null },
    { name: 'Reason', value: 'Smart Campaign: 4242, Step Seq ID: 1' },
    { name: 'Source', value: 'Sync Person to Microsoft (100001)' }
  ])
  const activities = ssfsActivities(emu, service, ann)
  t.equal(activities.length, 1, 'one SSFS activity per person')
  t.match(activities[0], { leadId: ann, campaignId: 4242, primaryAttributeValue: 'Lead', marketoGUID: String })
  t.same(activities[0]?.attributes, [
    { name: 'success', value: true },
    { name: 'outcome', value: 'created' },
    { name: 'dynamicsRecordId', value: `dyn-${ann}` },
    { name: 'assignTo', value: ASSIGN_TO }
  ], 'reserved + declared callback attributes + flow-step values; undeclared dropped')
  t.equal(ssfsActivities(emu, service, bo).length, 1)
})

t.test('a batch campaign sends all persons in one invocation without trigger context', async (t) => {
  const { emu, fake, service, ann, bo, cy } = await startScenario(t)
  const run = await emu.runCampaign(service, { personIds: [ann, bo, cy], flowStepContext: { syncAs: 'Contact' }, kind: 'batch' })
  t.equal(run.invocations.length, 1)
  const payload = fake.invocations[0]?.body
  t.equal(payload?.objectData.length, 3)
  t.equal(payload?.context.campaign?.type, 'batch')
  t.notOk(payload?.objectData.some((item) => 'triggeringContext' in item), 'no trigger context in batch campaigns')
  t.same(payload?.objectData[1]?.objectContext, { id: bo, email: 'bo.chen@example.com', firstName: 'Bo', lastName: null, companyName: null }, 'empty fields are null')
  await emu.waitForCallback(run.invocations[0]?.token ?? '', { timeoutMs: 5000 })
  t.same([ann, bo, cy].map((id) => ssfsActivities(emu, service, id)[0]?.primaryAttributeValue), ['Contact', 'Contact', 'Contact'])
})

t.test('the callback endpoint refuses wrong credentials and bad bodies, then accepts the token exactly once', async (t) => {
  const { emu, fake, service, ann } = await startScenario(t)
  fake.callbackMode = 'none'
  const run = await emu.runCampaign(service, { personIds: [ann], flowStepContext: { syncAs: 'Lead' }, kind: 'trigger' })
  const invocation = fake.invocations[0]!.body
  const good = successCallbackBody(invocation)
  const url = emu.callbackUrl
  const auth = { token: invocation.token, key: invocation.apiCallBackKey }

  t.match(await postCallback(url, { key: auth.key }, good), { status: 401, body: { error: { code: 'CALLBACK_TOKEN_MISSING' } } })
  t.match(await postCallback(url, { token: 'not-a-token', key: auth.key }, good), { status: 404, body: { error: { code: 'CALLBACK_TOKEN_UNKNOWN' } } })
  t.match(await postCallback(url, { token: auth.token }, good), { status: 401, body: { error: { code: 'CALLBACK_KEY_MISSING' } } })
  t.match(await postCallback(url, { token: auth.token, key: SERVICE_API_KEY }, good), { status: 403, body: { error: { code: 'CALLBACK_KEY_MISMATCH' } } })
  t.match(await postCallback(url, auth, '{not json'), { status: 400, body: { error: { code: 'CALLBACK_INVALID_JSON' } } })
  t.match(await postCallback(url, auth, { objectData: [] }), { status: 400, body: { error: { code: 'CALLBACK_SCHEMA_INVALID', message: /munchkinId/ } } })
  t.match(await postCallback(url, auth, { munchkinId: MUNCHKIN_ID, objectData: [{ leadData: { microsoftRecordId: 'x' } }] }), { status: 400, body: { error: { message: /leadData\.id/ } } })
  t.same(ssfsActivities(emu, service, ann), [], 'nothing written by refused callbacks')
  t.equal(emu.persons.get(ann)?.microsoftRecordId, undefined)

  t.match(await postCallback(url, auth, good), { status: 202, body: { status: 'accepted', processed: 1 } })
  t.match(await postCallback(url, auth, good), { status: 409, body: { error: { code: 'CALLBACK_TOKEN_USED' } } }, 'tokens are single-use')
  t.equal(ssfsActivities(emu, service, ann).length, 1, 'the replay wrote nothing')
  t.equal(emu.callbackAttemptCount(run.invocations[0]?.token), 7, 'every attempt bearing the token is counted (not the tokenless or foreign ones)')
})

t.test('a chunk-level errorCode is logged and no objectData is processed', async (t) => {
  const { emu, fake, service, ann } = await startScenario(t)
  fake.callbackMode = 'none'
  await emu.runCampaign(service, { personIds: [ann], flowStepContext: { syncAs: 'Lead' }, kind: 'trigger' })
  const invocation = fake.invocations[0]!.body
  const body = { ...successCallbackBody(invocation) as object, errorCode: 'DYNAMICS_UNAVAILABLE', errorMessage: 'Dataverse answered 503' }

  const response = await postCallback(emu.callbackUrl, { token: invocation.token, key: invocation.apiCallBackKey }, body)

  t.equal(response.status, 202)
  t.same(ssfsActivities(emu, service, ann), [])
  t.equal(emu.persons.get(ann)?.microsoftRecordId, undefined)
  t.match(emu.serviceLog(), [{ level: 'chunk', code: 'DYNAMICS_UNAVAILABLE', message: 'Dataverse answered 503', token: invocation.token }])
})

t.test('record-level failures are written as unsuccessful activities with reason and errorCode', async (t) => {
  const { emu, fake, service, ann } = await startScenario(t)
  fake.callbackMode = 'none'
  await emu.runCampaign(service, { personIds: [ann], flowStepContext: { syncAs: 'Lead', assignTo: ASSIGN_TO }, kind: 'trigger' })
  const invocation = fake.invocations[0]!.body
  await postCallback(emu.callbackUrl, { token: invocation.token, key: invocation.apiCallBackKey }, {
    munchkinId: MUNCHKIN_ID,
    objectData: [{ leadData: { id: ann }, activityData: { success: false, reason: 'Owner not found', errorCode: 'OWNER_NOT_FOUND', outcome: 'failed' } }]
  })
  t.same(ssfsActivities(emu, service, ann)[0]?.attributes, [
    { name: 'success', value: false },
    { name: 'reason', value: 'Owner not found' },
    { name: 'errorCode', value: 'OWNER_NOT_FOUND' },
    { name: 'outcome', value: 'failed' },
    { name: 'assignTo', value: ASSIGN_TO }
  ])
  t.match(emu.serviceLog(), [{ level: 'record', code: 'OWNER_NOT_FOUND', leadId: ann }])
})

t.test('injected callback failures are refused without effect until the service\'s retry gets through', async (t) => {
  const { emu, service, ann } = await startScenario(t)
  emu.callbackFaults.failNext(2)
  const run = await emu.runCampaign(service, { personIds: [ann], flowStepContext: { syncAs: 'Lead' }, kind: 'trigger' })
  const token = run.invocations[0]?.token ?? ''

  const accepted = await emu.waitForCallback(token, { timeoutMs: 5000 })

  t.equal(accepted.status, 202)
  t.equal(emu.callbackAttemptCount(token), 3)
  t.same(emu.callbacks.filter((callback) => callback.token === token).map((callback) => callback.status), [503, 503, 202])
  t.equal(ssfsActivities(emu, service, ann).length, 1, 'written once')
})

t.test('failFor refuses callbacks for a period of the emulator clock', async (t) => {
  let clock = Date.parse('2024-06-01T12:00:00Z')
  const { emu, fake, service, ann } = await startScenario(t, { now: () => new Date(clock) })
  fake.callbackMode = 'none'
  await emu.runCampaign(service, { personIds: [ann], flowStepContext: { syncAs: 'Lead' }, kind: 'trigger' })
  const invocation = fake.invocations[0]!.body
  const auth = { token: invocation.token, key: invocation.apiCallBackKey }

  emu.callbackFaults.failFor(60_000, 502)
  t.equal((await postCallback(emu.callbackUrl, auth, successCallbackBody(invocation))).status, 502)
  clock += 61_000
  t.equal((await postCallback(emu.callbackUrl, auth, successCallbackBody(invocation))).status, 202)
  t.equal(ssfsActivities(emu, service, ann)[0]?.activityDate, '2024-06-01T12:01:01Z', 'activity dated by the emulator clock')
})

t.test('an invocation the service does not accept with 201 is logged and its token is closed', async (t) => {
  const { emu, fake, service, ann } = await startScenario(t)
  fake.invocationStatus = 500
  const run = await emu.runCampaign(service, { personIds: [ann], flowStepContext: { syncAs: 'Lead' }, kind: 'trigger' })
  t.equal(run.invocations[0]?.status, 500)
  t.match(emu.serviceLog(), [{ level: 'invocation', code: '500', token: run.invocations[0]?.token }])
  const invocation = fake.invocations[0]!.body
  const response = await postCallback(emu.callbackUrl, { token: invocation.token, key: invocation.apiCallBackKey }, successCallbackBody(invocation))
  t.equal(response.status, 404)
})

t.test('waitForCallback rejects when no callback arrives in time', async (t) => {
  const { emu, fake, service, ann } = await startScenario(t)
  fake.callbackMode = 'none'
  const run = await emu.runCampaign(service, { personIds: [ann], flowStepContext: { syncAs: 'Lead' }, kind: 'trigger' })
  await t.rejects(emu.waitForCallback(run.invocations[0]?.token ?? '', { timeoutMs: 30 }), CallbackWaitTimeoutError)
})

t.test('the HTTP controls: persons, campaign run, activities and faults', async (t) => {
  const { emu, ann } = await startScenario(t)
  const control = async (method: string, path: string, body?: unknown): Promise<{ status: number, body: any }> => {
    const response = await fetch(`${emu.url}${path}`, { method, ...(body === undefined ? {} : { headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) }) })
    return { status: response.status, body: response.status === 204 ? undefined : await response.json() }
  }

  const persons = await control('GET', '/_emulator/persons')
  t.equal(persons.body.persons.length, 3)
  const run = await control('POST', '/_emulator/campaigns/run', { personIds: [ann], flowStepContext: { syncAs: 'Lead' }, kind: 'trigger' })
  t.equal(run.status, 200)
  await emu.waitForCallback(run.body.invocations[0].token, { timeoutMs: 5000 })
  const activities = await control('GET', `/_emulator/persons/${ann}/activities`)
  t.ok(activities.body.activities.some((activity: { activityTypeId: number }) => activity.activityTypeId === 100001))

  t.equal((await control('PUT', '/_emulator/faults', { rateLimitNext: 1 })).status, 204)
  const token = await (await fetch(`${emu.identityUrl}/oauth/token?grant_type=client_credentials&client_id=cid&client_secret=secret`)).json() as { access_token: string }
  const rest = async (): Promise<any> => await (await fetch(`${emu.restUrl}/v1/lead/${ann}.json`, { headers: { Authorization: `Bearer ${token.access_token}` } })).json()
  t.match(await rest(), { success: false, errors: [{ code: '606' }] })
  t.match(await rest(), { success: true })
  t.equal((await control('PUT', '/_emulator/faults', { rateLimitNext: 1 })).status, 204)
  t.equal((await control('DELETE', '/_emulator/faults')).status, 204)
  t.match(await rest(), { success: true }, 'DELETE cleared the queued fault')
  t.equal((await control('POST', '/_emulator/campaigns/run', { personIds: 'nope' })).status, 400)
})

t.test('REST: the 414 workaround (POST with _method=GET and a form body) and the access_token parameter', async (t) => {
  const { emu, ann, bo } = await startScenario(t)
  const token = await (await fetch(`${emu.identityUrl}/oauth/token?grant_type=client_credentials&client_id=cid&client_secret=secret`)).json() as { access_token: string, expires_in: number }
  const restCallsBefore = emu.restCallCount()

  const response = await fetch(`${emu.restUrl}/v1/leads.json`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ _method: 'GET', access_token: token.access_token, filterType: 'id', filterValues: `${ann},${bo}`, fields: 'email' }).toString()
  })

  t.equal(response.headers.get('content-type'), 'application/json;charset=UTF-8')
  t.match(await response.json(), { success: true, result: [{ id: ann, email: 'ann.lee@example.com' }, { id: bo, email: 'bo.chen@example.com' }] })
  t.equal(emu.restCallCount() - restCallsBefore, 1)
  const tooLong = await fetch(`${emu.restUrl}/v1/leads.json?filterType=email&filterValues=${'x'.repeat(9000)}`, { headers: { Authorization: `Bearer ${token.access_token}` } })
  t.equal(tooLong.status, 414, 'URIs over 8 KB are refused at the HTTP level')
  const unauthenticated = await (await fetch(`${emu.restUrl}/v1/lead/${ann}.json`)).json()
  t.match(unauthenticated, { success: false, errors: [{ code: '600', message: 'Access token not specified' }] })
  const forged = await (await fetch(`${emu.restUrl}/v1/lead/${ann}.json`, { headers: { Authorization: 'Bearer forged' } })).json()
  t.match(forged, { success: false, errors: [{ code: '601', message: 'Access token invalid' }] })
  emu.expireTokens()
  const expired = await (await fetch(`${emu.restUrl}/v1/lead/${ann}.json`, { headers: { Authorization: `Bearer ${token.access_token}` } })).json()
  t.match(expired, { success: false, errors: [{ code: '602', message: 'Access token expired' }] })
})

t.test('identity: the same token with a decreasing expires_in until it expires', async (t) => {
  let clock = Date.parse('2024-06-01T12:00:00Z')
  const emu = await startMarketoEmulator({ munchkinId: MUNCHKIN_ID, clients: [{ clientId: 'cid', clientSecret: 'secret' }], now: () => new Date(clock) })
  t.teardown(() => emu.close())
  const issue = async (): Promise<{ access_token: string, expires_in: number }> =>
    await (await fetch(`${emu.identityUrl}/oauth/token?grant_type=client_credentials&client_id=cid&client_secret=secret`, { method: 'POST' })).json() as { access_token: string, expires_in: number }
  const first = await issue()
  clock += 10_000
  const second = await issue()
  t.equal(second.access_token, first.access_token)
  t.equal(first.expires_in - second.expires_in, 10)
  clock += 3600_000
  t.not((await issue()).access_token, first.access_token, 'a fresh token after expiry')
  const refused = await fetch(`${emu.identityUrl}/oauth/token?grant_type=client_credentials&client_id=cid&client_secret=nope`)
  t.equal(refused.status, 401)
  t.same(await refused.json(), { error: 'invalid_client', error_description: 'Bad client credentials' })
  t.equal(emu.identityRequestCount(), 4)
})
