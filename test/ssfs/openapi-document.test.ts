import t from 'tap'
import { readFile } from 'node:fs/promises'
import { load as loadYaml } from 'js-yaml'
import { Ajv } from 'ajv'
import addFormats from 'ajv-formats'
import { Validator } from '@seriousme/openapi-schema-validator'
import { committedSsfsDocument } from '../../scripts/write-ssfs-openapi.ts'

// Adobe's schema for SSFS API definitions (MIT, from adobe/Marketo-SSFS-Service-Provider-Interface),
// validated the way Adobe's own scripts/validate.js does: ajv, non-strict, their custom formats allowed.
const adobeSchema = loadYaml(await readFile(new URL('../fixtures/ssfs/schema.yaml', import.meta.url), 'utf8')) as object
const committed = JSON.parse(await readFile(new URL('../../openapi/ssfs-service.json', import.meta.url), 'utf8')) as Record<string, unknown>

t.test('the committed API definition is what the route schemas produce (run `npm run openapi` after changing them)', async (t) => {
  t.same(committed, committedSsfsDocument())
})

t.test('the API definition passes Adobe\'s SSFS schema', async (t) => {
  const ajv = new Ajv({ strict: false, allErrors: true })
  addFormats.default(ajv)
  for (const format of ['int32', 'int64', 'datetime', 'binary']) ajv.addFormat(format, true)
  const validate = ajv.compile(adobeSchema)
  const valid = validate(committed)
  t.equal(valid, true, JSON.stringify(validate.errors, null, 2))
})

t.test('Adobe\'s schema does reject a definition missing what it requires (the check has teeth)', async (t) => {
  const ajv = new Ajv({ strict: false })
  addFormats.default(ajv)
  for (const format of ['int32', 'int64', 'datetime', 'binary']) ajv.addFormat(format, true)
  const validate = ajv.compile(adobeSchema)
  const { paths, ...rest } = committed as { paths: Record<string, unknown> }
  const { '/status': _status, ...otherPaths } = paths
  t.equal(validate({ ...rest, paths: otherPaths }), false, 'a definition without /status must fail')
  const info = committed.info as Record<string, unknown>
  const { 'x-providerName': _provider, ...infoWithoutProvider } = info
  t.equal(validate({ ...committed, info: infoWithoutProvider }), false, 'a definition without x-providerName must fail')
})

t.test('the API definition is valid OpenAPI 3', async (t) => {
  const validator = new Validator()
  const result = await validator.validate(structuredClone(committed))
  t.equal(result.valid, true, JSON.stringify(result.errors, null, 2))
  t.equal(validator.version, '3.0')
})

t.test('the definition carries what Marketo needs to install the step', async (t) => {
  const info = committed.info as Record<string, string>
  t.equal(info['x-schemaVersion'], '1.0.0')
  t.ok(info['x-providerName'])
  t.ok(info['x-supportContact'])
  t.same(committed.security, [{ apiKey: [] }], 'apiKey is the first (and only) scheme: Marketo uses the first')
  const schemes = (committed.components as { securitySchemes: Record<string, unknown> }).securitySchemes
  t.same(schemes.apiKey, { type: 'apiKey', name: 'x-api-key', in: 'header' })
  const paths = committed.paths as Record<string, Record<string, { responses: Record<string, unknown>, callbacks?: unknown }>>
  for (const path of ['/submitAsyncAction', '/getServiceDefinition', '/status', '/getPicklist', '/serviceIcon', '/brandIcon']) t.ok(paths[path], `${path} declared`)
  t.same(Object.keys(paths['/submitAsyncAction']?.post?.responses ?? {}).filter((c) => ['201', '400', '401', '403', '429', '500'].includes(c)).length, 6)
  const callbacks = paths['/submitAsyncAction']?.post?.callbacks as Record<string, Record<string, { post: { parameters: Array<{ name: string }>, responses: Record<string, unknown> } }>>
  const callback = callbacks?.selfServiceFlowComplete?.['{$request.body#/flowComplete}']
  t.ok(callback, 'the callback is declared under Adobe\'s literal runtime expression (schema.yaml cannot check it: its `callbacks` rule is inert)')
  t.same(callback?.post.parameters.map((p) => p.name), ['x-api-key', 'x-callback-token'])
  t.ok(callback?.post.responses['404'] !== undefined && callback?.post.responses['405'] !== undefined)
})
