import t from 'tap'
import { Agent, createServer, request, type Server } from 'node:http'
import { once } from 'node:events'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { Writable } from 'node:stream'
import { Redis } from 'ioredis'
import { startSandbox } from '../../sandbox/start-sandbox.ts'
import { spawnServiceProcess } from '../../sandbox/service-processes.ts'
import { waitUntilReady } from '../../sandbox/wait-until-ready.ts'
import { FlowStepIntake, flowStepIntakeKeys } from '../../src/queue/flow-step-intake.ts'

/**
 * Bad input, as a hostile or broken client sends it: a generated corpus of over 10,000 malformed
 * `/submitAsyncAction` requests (wrong types, missing fields, huge strings, deep nesting, invalid
 * JSON and bytes, JSON that is not an object, prototype-pollution keys, wrong content types,
 * oversized bodies) against a real API process. Each must get a 4xx with the service's JSON error,
 * never a 5xx or a dropped connection, and the process's memory must not grow with them. Then the
 * callback allow-list: hosts that only look allowed are refused and never contacted.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const CORPUS_SIZE = 10_500
const SEED = 0x5eed1234
const CONCURRENCY = 16
const LEAK_BOUND_MB = 50
const ALLOWED_HOST = 'allowed.example.com'

// An allow-list listener: nothing the API is given must ever reach it.
const contacted: string[] = []
const trap = (server: Server) => server.on('request', (req, res) => { contacted.push(`${req.method} ${req.url}`); res.end() })
const trapV4 = trap(createServer())
trapV4.listen(0, '127.0.0.1')
await once(trapV4, 'listening')
const trapPort = (trapV4.address() as { port: number }).port
let trapV6: Server | undefined = trap(createServer())
try {
  trapV6.listen(trapPort, '::1')
  await once(trapV6, 'listening')
} catch {
  trapV6 = undefined // no IPv6 loopback here: the literal is still refused by the API, which is what matters
}

const sandbox = await startSandbox({ env: { LOG_LEVEL: 'warn' } })
const env = { ...process.env, ...sandbox.env, MARKETO_CALLBACK_HOSTS: `${sandbox.env.MARKETO_CALLBACK_HOSTS},${ALLOWED_HOST}` }
const apiOutput: string[] = []
const api = spawnServiceProcess({
  name: 'api',
  entry: 'src/server.ts',
  cwd: ROOT,
  env,
  output: new Writable({ write (chunk: Buffer, _encoding, done) { apiOutput.push(chunk.toString()); done() } })
})
const redis = new Redis(sandbox.redis.url, { maxRetriesPerRequest: 1 })
// No worker runs here: whatever the API accepted stays in the intake stream, to be counted.
const intake = new FlowStepIntake({ redis, keys: flowStepIntakeKeys('mds'), timeoutMs: 2_000 })
t.teardown(async () => {
  redis.disconnect()
  await api.stop(10_000)
  await sandbox.close()
  trapV4.close()
  trapV6?.close()
})
await waitUntilReady(`${sandbox.publicUrl}/health/ready`, { timeoutMs: 30_000 })

const base = new URL(sandbox.publicUrl)
const key = sandbox.env.SSFS_API_KEY ?? ''
const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY })

interface Answer { status: number, contentType: string, body: string }
interface BadRequest { what: string, body: string | Buffer, headers: Record<string, string> }

/** One request; resolves with the answer, or with status 0 if the connection died without one. */
function send (bad: BadRequest): Promise<Answer> {
  return new Promise((resolve) => {
    const req = request({ agent, host: base.hostname, port: base.port, path: '/submitAsyncAction', method: 'POST', headers: bad.headers }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.once('end', () => resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type'] ?? ''), body: Buffer.concat(chunks).toString() }))
      res.once('error', () => resolve({ status: 0, contentType: '', body: '' }))
    })
    req.setTimeout(15_000, () => req.destroy(new Error('no answer within 15 s')))
    req.once('error', (error) => resolve({ status: 0, contentType: '', body: error.message }))
    req.end(bad.body)
  })
}

async function rssMb (): Promise<number> {
  const status = await readFile(`/proc/${api.pid}/status`, 'utf8')
  return Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? Number.NaN) / 1024
}

// ---- the corpus -------------------------------------------------------------------------------

/** mulberry32: small, seeded, good enough to pick mutations reproducibly. */
function prng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = a
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}
const random = prng(SEED)
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!
const int = (min: number, max: number) => min + Math.floor(random() * (max - min + 1))
const text = (length: number) => 'x'.repeat(length)
let serial = 0

type Json = Record<string, unknown>
function validBody (): Json {
  serial++
  return {
    token: `tok-${serial}`,
    batchid: 'b-1',
    apiCallBackKey: 'callback-key',
    campaignId: 1001,
    callbackUrl: sandbox.marketo.callbackUrl,
    context: { subscription: { munchkinId: '123-ABC-456' } },
    objectData: Array.from({ length: int(1, 3) }, (_, i) => ({
      objectType: 'lead',
      objectContext: { id: serial * 10 + i + 1, email: `p${serial}-${i}@example.com`, firstName: 'Pat' },
      flowStepContext: { syncAs: 'Lead' }
    }))
  }
}
const person = (body: Json) => (body.objectData as Json[])[0]!
const nested = (depth: number, leaf: string) => `${'['.repeat(depth)}${leaf}${']'.repeat(depth)}`
const deepObject = (depth: number) => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`

/** Each mutation makes a valid body invalid in exactly one way the schema or parser must catch. */
const mutations: Array<[string, (body: Json) => Json | string]> = [
  ['campaignId as a string', (b) => ({ ...b, campaignId: String(b.campaignId) })],
  ['campaignId fractional', (b) => ({ ...b, campaignId: 1.5 })],
  ['campaignId beyond int32', (b) => ({ ...b, campaignId: 2 ** 40 })],
  ['campaignId null', (b) => ({ ...b, campaignId: null })],
  ['campaignId an array', (b) => ({ ...b, campaignId: [1] })],
  ['campaignId missing', ({ campaignId: _c, ...b }) => b],
  ['callbackUrl missing', ({ callbackUrl: _c, ...b }) => b],
  ['callbackUrl a number', (b) => ({ ...b, callbackUrl: 42 })],
  ['callbackUrl empty', (b) => ({ ...b, callbackUrl: '' })],
  ['callbackUrl not a URL', (b) => ({ ...b, callbackUrl: 'not a url at all' })],
  ['callbackUrl huge', (b) => ({ ...b, callbackUrl: `${sandbox.marketo.callbackUrl}?${text(int(2100, 50_000))}` })],
  ['callbackUrl off the allow-list', (b) => ({ ...b, callbackUrl: `https://evil-${int(1, 1e6)}.test/cb` })],
  ['token a number', (b) => ({ ...b, token: 12345 })],
  ['token empty', (b) => ({ ...b, token: '' })],
  ['token huge', (b) => ({ ...b, token: text(int(1025, 100_000)) })],
  ['batchid huge', (b) => ({ ...b, batchid: text(int(257, 10_000)) })],
  ['apiCallBackKey an object', (b) => ({ ...b, apiCallBackKey: { key: 'x' } })],
  ['token missing (no callback possible)', ({ token: _t, ...b }) => b],
  ['token with CR LF', (b) => ({ ...b, token: `tok-${int(1, 1e6)}\r\nx-injected: 1` })],
  ['token past ASCII', (b) => ({ ...b, token: `tok-${int(1, 1e6)}-${pick(['é', '\u2603', '\u0000', '\u007f'])}` })],
  ['apiCallBackKey missing', ({ apiCallBackKey: _k, ...b }) => b],
  ['context missing', ({ context: _c, ...b }) => b],
  ['munchkinId empty', (b) => ({ ...b, context: { subscription: { munchkinId: '' } } })],
  ['context a string', (b) => ({ ...b, context: 'context' })],
  ['context without subscription', (b) => ({ ...b, context: {} })],
  ['munchkinId a number', (b) => ({ ...b, context: { subscription: { munchkinId: 123 } } })],
  ['munchkinId huge', (b) => ({ ...b, context: { subscription: { munchkinId: text(int(65, 100_000)) } } })],
  ['objectData an object', (b) => ({ ...b, objectData: person(b) })],
  ['objectData a string', (b) => ({ ...b, objectData: 'persons' })],
  ['objectData over 1000 persons', (b) => ({ ...b, objectData: Array.from({ length: 1001 }, () => person(b)) })],
  ['objectType missing', (b) => ({ ...b, objectData: [{ objectContext: person(b).objectContext }] })],
  ['objectType not lead', (b) => ({ ...b, objectData: [{ ...person(b), objectType: pick(['account', 'Lead', '', 'opportunity']) }] })],
  ['objectContext missing', (b) => ({ ...b, objectData: [{ objectType: 'lead' }] })],
  ['person id missing', (b) => ({ ...b, objectData: [{ objectType: 'lead', objectContext: { email: 'a@example.com' } }] })],
  ['person id wrong', (b) => ({ ...b, objectData: [{ objectType: 'lead', objectContext: { id: pick(['7', 0, -1, 1.25, 2 ** 60, null, true]) } }] })],
  ['person field an object', (b) => ({ ...b, objectData: [{ objectType: 'lead', objectContext: { id: 1, email: { nested: true } } }] })],
  ['person field an array', (b) => ({ ...b, objectData: [{ objectType: 'lead', objectContext: { id: 1, firstName: ['a', 'b'] } }] })],
  ['person field huge', (b) => ({ ...b, objectData: [{ objectType: 'lead', objectContext: { id: 1, email: text(int(4001, 1_000_000)) } }] })],
  ['syncAs unknown', (b) => ({ ...b, objectData: [{ ...person(b), flowStepContext: { syncAs: pick(['Account', 'lead', '', 1]) } }] })],
  ['assignTo huge', (b) => ({ ...b, objectData: [{ ...person(b), flowStepContext: { assignTo: text(int(65, 5000)) } }] })],
  ['triggeringContext a string', (b) => ({ ...b, objectData: [{ ...person(b), triggeringContext: 'form' }] })],
  ['triggering name huge', (b) => ({ ...b, objectData: [{ ...person(b), triggeringContext: { name: text(int(1001, 20_000)) } }] })],
  ['deep nesting in a person field', (b) => JSON.stringify(b).replace(/"firstName":"Pat"/, `"firstName":${nested(int(10, 200_000), '1')}`)],
  ['deep nesting, no campaign', ({ campaignId: _c, ...b }) => JSON.stringify(b).replace('"context":{', `"deep":${deepObject(int(10, 100_000))},"context":{`)],
  ['deep nesting in context, no token, bad id', ({ token: _t, ...b }) => JSON.stringify({ ...b, campaignId: 'x' }).replace('"context":{', `"context":{"admin":${deepObject(int(1_000, 100_000))},`)],
  ['body nested in arrays', (b) => nested(int(1, 100_000), JSON.stringify(b))],
  ['__proto__ at the top', (b) => `{"__proto__":{"polluted":true},${JSON.stringify(b).slice(1)}`],
  ['__proto__ in a person', (b) => JSON.stringify(b).replace('"objectContext":{', '"objectContext":{"__proto__":{"isAdmin":true},')],
  ['constructor.prototype', (b) => `{"constructor":{"prototype":{"polluted":true}},${JSON.stringify(b).slice(1)}`]
]

const invalidJson = [
  '', ' ', '{', '}', '{"campaignId": 1,', '{campaignId: 1}', "{'campaignId': 1}", '{"campaignId": NaN}', '{"a":1,}',
  '[1,2', '{"a":"\\x"}', '{"a":"\u0001"}', 'null null', '{"a":1}{"b":2}', '\uFEFF{"campaignId":1}', 'undefined', '{"a":01}', 'tru', '"unterminated'
]
const notObjects = ['null', 'true', 'false', '0', '-1.5e308', '"a string"', '[]', '[{"campaignId":1}]', '1e999']
const badContentTypes = [
  'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=xyz', 'application/xml',
  'application/jsonx', 'json', 'text/json', 'application/octet-stream', '*/*', 'application/json-patch+json',
  'application/json; charset=latin1', 'application/json; charset=utf-16'
]

function generate (): BadRequest {
  const headers: Record<string, string> = { 'content-type': 'application/json', 'x-api-key': key }
  const roll = random()
  if (roll < 0.55) {
    const [what, mutate] = pick(mutations)
    const result = mutate(validBody())
    return { what, body: typeof result === 'string' ? result : JSON.stringify(result), headers }
  }
  if (roll < 0.65) return { what: 'invalid JSON', body: pick(invalidJson), headers }
  if (roll < 0.70) return { what: 'JSON that is not an object', body: pick(notObjects), headers }
  if (roll < 0.78) {
    // Random bytes, and a valid body with invalid UTF-8 spliced into a string.
    const bytes = Buffer.from(Array.from({ length: int(1, 2048) }, () => int(0, 255)))
    if (random() < 0.5) return { what: 'random bytes', body: bytes, headers }
    const valid = Buffer.from(JSON.stringify({ ...validBody(), campaignId: 'bad' }))
    const at = valid.indexOf('"b-1"') + 2
    return { what: 'invalid UTF-8 in a string', body: Buffer.concat([valid.subarray(0, at), Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0xe2, 0x82]), valid.subarray(at)]), headers }
  }
  if (roll < 0.86) {
    const contentType = pick([...badContentTypes, undefined])
    const { 'content-type': _json, ...rest } = headers
    return { what: `content type ${contentType ?? '(none)'}`, body: JSON.stringify(validBody()), headers: contentType === undefined ? rest : { ...rest, 'content-type': contentType } }
  }
  if (roll < 0.995) {
    const { 'x-api-key': _key, ...rest } = headers
    const wrong = pick([undefined, '', 'wrong', key.slice(0, -1), `${key}x`, key.toUpperCase(), ' '.repeat(10), text(5000)])
    return { what: 'wrong or missing key', body: JSON.stringify(validBody()), headers: wrong === undefined ? rest : { ...rest, 'x-api-key': wrong } }
  }
  // Oversized: over the 4 MB body limit.
  return { what: 'oversized body', body: JSON.stringify({ ...validBody(), padding: text(int(4 * 1024 * 1024, 6 * 1024 * 1024)) }), headers }
}

// ---- the tests --------------------------------------------------------------------------------

t.test(`${CORPUS_SIZE} malformed invocations: each a 4xx with a JSON error, no 5xx, no dropped connection, flat memory`, async (t) => {
  const corpus = Array.from({ length: CORPUS_SIZE }, generate)
  const kinds = new Map<string, number>()
  for (const bad of corpus) kinds.set(bad.what, (kinds.get(bad.what) ?? 0) + 1)
  t.ok(kinds.size >= 40, `${kinds.size} kinds of malformed input`)

  const failures: string[] = []
  const statuses = new Map<number, number>()
  const warmUp = 2_000
  let rssAfterWarmUp = Number.NaN
  let next = 0
  const lane = async () => {
    while (next < corpus.length) {
      const index = next++
      const bad = corpus[index]!
      const answer = await send(bad)
      statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1)
      let json: Record<string, unknown> | undefined
      try { json = JSON.parse(answer.body) as Record<string, unknown> } catch { json = undefined }
      const ok = answer.status >= 400 && answer.status < 500 && /^application\/json/.test(answer.contentType) &&
        json !== undefined && json.statusCode === answer.status && typeof json.code === 'string' && typeof json.message === 'string'
      if (!ok && failures.length < 20) failures.push(`#${index} ${bad.what}: HTTP ${answer.status} ${answer.contentType} ${answer.body.slice(0, 200)}`)
      if (!ok && failures.length >= 20) failures.push('…')
      if (bad.what === 'wrong or missing key' && answer.status !== 401) failures.push(`#${index} wrong key answered ${answer.status}`)
      if (index === warmUp) rssAfterWarmUp = await rssMb()
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, lane))
  const rssAtEnd = await rssMb()

  t.same(failures.slice(0, 20), [], 'every request answered 4xx with the JSON error shape')
  t.notOk(statuses.has(0), `no dropped connections (${statuses.get(0) ?? 0})`)
  t.notOk([...statuses.keys()].some((status) => status >= 500), 'no 5xx')
  t.ok(statuses.get(401)! > 0 && statuses.get(400)! > 0 && statuses.get(415)! > 0 && statuses.get(413)! > 0, `401, 400, 415 and 413 all seen: ${JSON.stringify(Object.fromEntries(statuses))}`)
  t.ok(rssAtEnd - rssAfterWarmUp < LEAK_BOUND_MB, `API RSS ${rssAfterWarmUp.toFixed(0)} MB after warm-up, ${rssAtEnd.toFixed(0)} MB at the end (bound +${LEAK_BOUND_MB} MB)`)
  t.equal(await intake.backlog(), 0, 'nothing was queued')
})

t.test('a valid invocation with deep nesting where the interface allows any object is not a 5xx', async (t) => {
  // `context.admin` takes any object; with no token the invocation id is derived from the body.
  const { token: _token, ...body } = validBody()
  const answer = await send({
    what: 'deep context.admin',
    body: JSON.stringify(body).replace('"context":{', `"context":{"admin":${deepObject(50_000)},`),
    headers: { 'content-type': 'application/json', 'x-api-key': key }
  })
  t.ok(answer.status < 500 && answer.status !== 0, `answered ${answer.status}`)
  t.match(JSON.parse(answer.body), { code: String })
})

t.test('callback URLs that only look allowed are refused and never contacted', async (t) => {
  const before = await intake.backlog()
  const refused = [
    `http://127.0.0.1:${trapPort}/cb`,
    `https://127.0.0.1:${trapPort}/cb`,
    `http://[::1]:${trapPort}/cb`,
    'https://[::1]/cb',
    `http://[::ffff:127.0.0.1]:${trapPort}/cb`,
    `http://2130706433:${trapPort}/cb`, // 127.0.0.1 in decimal
    `http://0x7f.1:${trapPort}/cb`,
    `https://${ALLOWED_HOST}.evil.test/cb`,
    `https://${ALLOWED_HOST}@evil.test/cb`,
    `https://${ALLOWED_HOST}:pw@127.0.0.1:${trapPort}/cb`,
    `https://evil.test/${ALLOWED_HOST}`,
    `https://evil.test/?host=${ALLOWED_HOST}`,
    `https://evil.test#${ALLOWED_HOST}`,
    `https://x${ALLOWED_HOST}/cb`,
    `http://${ALLOWED_HOST}/cb`, // the rule allows https only
    `https://${ALLOWED_HOST}:8443/cb`, // and the default port only
    `ftp://${ALLOWED_HOST}/cb`,
    `file:///etc/passwd`,
    `javascript:alert(1)`,
    `data:text/plain,${ALLOWED_HOST}`,
    `gopher://127.0.0.1:${trapPort}/_cb`,
    `ws://${ALLOWED_HOST}/cb`
  ]
  for (const callbackUrl of refused) {
    const answer = await send({ what: callbackUrl, body: JSON.stringify({ ...validBody(), callbackUrl }), headers: { 'content-type': 'application/json', 'x-api-key': key } })
    t.equal(answer.status, 400, `${callbackUrl} refused`)
    t.match(JSON.parse(answer.body), { code: /^(CALLBACK_URL_REFUSED|FST_ERR_VALIDATION)$/ })
  }
  const allowed = await send({ what: 'allowed', body: JSON.stringify({ ...validBody(), callbackUrl: `https://${ALLOWED_HOST}/cb` }), headers: { 'content-type': 'application/json', 'x-api-key': key } })
  t.equal(allowed.status, 201, 'the allowed host itself is accepted (the list is not simply refusing everything)')
  t.equal(await intake.backlog(), before + 1, 'only the allowed invocation was queued')
  t.same(contacted, [], 'the trap listener was never contacted')
})
