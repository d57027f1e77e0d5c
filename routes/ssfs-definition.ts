import { readFile } from 'node:fs/promises'
import type { FastifyPluginAsync } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { RedisClient } from '../src/queue/connections.ts'
import { Type } from 'typebox'
import { ServiceDefinition, ServiceStatus } from '../src/schemas/flow-step.ts'
import { buildServiceDefinition } from '../src/ssfs/service-definition.ts'
import { createApiKeyCheck } from '../src/http/api-key-check.ts'
import { ErrorResponse } from '../src/schemas/common.ts'

export interface SsfsDefinitionRoutesOptions {
  readonly publicUrl: string
  readonly providerName: string
  readonly supportContact: string
  readonly apiKey: string
  readonly redis: Pick<RedisClient, 'ping'>
}

const OPENAPI_DIR = new URL('../openapi/', import.meta.url)

/**
 * What Marketo reads to install and describe the flow step: the API definition (the committed
 * openapi/ssfs-service.json with `servers` set to PUBLIC_URL, provider and support from config), the service definition, status
 * and icons. Only `/status` is authenticated: Marketo calls it to verify the credentials an admin
 * entered (§1.1).
 */
const ssfsDefinitionRoutes: FastifyPluginAsync<SsfsDefinitionRoutesOptions> = async (fastify, options) => {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const document = JSON.parse(await readFile(new URL('ssfs-service.json', OPENAPI_DIR), 'utf8')) as Record<string, unknown>
  // The deployment's own name, support contact and address; everything else is the committed file.
  const servedDocument = {
    ...document,
    info: { ...(document.info as object), 'x-providerName': options.providerName, 'x-supportContact': options.supportContact },
    servers: [{ url: options.publicUrl }]
  }
  const serviceDefinition = buildServiceDefinition(options.publicUrl)
  const serviceIcon = await readFile(new URL('service-icon.svg', OPENAPI_DIR))
  const brandIcon = await readFile(new URL('brand-icon.svg', OPENAPI_DIR))

  app.get('/openapi.json', {
    schema: { tags: ['ssfs'], summary: 'The API definition Marketo installs the flow step from', response: { 200: Type.Object({}, { additionalProperties: true }) } }
  }, async () => servedDocument)

  app.get('/getServiceDefinition', {
    schema: { tags: ['ssfs'], summary: 'Flow parameters, fields and activity attributes', response: { 200: ServiceDefinition } }
  }, async () => serviceDefinition)

  app.get('/status', {
    onRequest: createApiKeyCheck(options.apiKey),
    schema: { tags: ['ssfs'], summary: 'Health as Marketo reads it', security: [{ apiKey: [] }], response: { 200: ServiceStatus, 401: ErrorResponse } }
  }, async () => {
    const redisUp = await options.redis.ping().then(() => true, () => false)
    return {
      info: ['Sync Person to Microsoft is running'],
      warnings: [],
      errors: redisUp ? [] : ['the job store (Redis) is unreachable: invocations are refused with 503 until it is back']
    }
  })

  for (const [path, icon] of [['/serviceIcon', serviceIcon], ['/brandIcon', brandIcon]] as const) {
    app.get(path, {
      schema: { tags: ['ssfs'], summary: 'Icon (SVG)', produces: ['image/svg+xml'] }
    }, async (_request, reply) => await reply.type('image/svg+xml').header('cache-control', 'public, max-age=86400').send(icon))
  }
}

export default ssfsDefinitionRoutes
