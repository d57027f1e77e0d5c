import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { Logger } from 'pino'
import type { RedisClient } from './queue/connections.ts'
import type { Config } from './config.ts'
import type { ApiFeature } from './feature-module.ts'
import { replyWithError } from './http/error-handler.ts'
import { registerJsonBodyParser } from './http/json-body-parser.ts'
import { registerAccessLog } from './http/access-log.ts'
import { ErrorResponse } from './schemas/common.ts'
import packageJson from '../package.json' with { type: 'json' }
import healthRoutes from '../routes/health.ts'
import type { ServiceMetrics } from './metrics/service-metrics.ts'
import type { DependencyCheck } from './metrics/readiness.ts'

export interface AppDeps {
  readonly config: Config
  readonly logger: Logger
  /** The API's own Redis connection (fail-fast policy, see src/queue/connections.ts). */
  readonly redis: RedisClient
  /** What this API serves besides its shared core (src/runtime/api-runtime.ts lists them). */
  readonly features: readonly ApiFeature[]
  /** Request durations by route template and status (src/metrics/); none: not measured. */
  readonly metrics?: Pick<ServiceMetrics, 'httpRequestDuration'>
  /** What `/health/ready` checks besides Redis (src/metrics/readiness.ts). */
  readonly readinessChecks?: readonly DependencyCheck[]
}

/** 1000 persons × the mapped fields fit in well under a megabyte; leave room, refuse the absurd. */
const BODY_LIMIT_BYTES = 4 * 1024 * 1024

/**
 * Builds the HTTP API from its dependencies; `src/server.ts` only listens. Tests build the very
 * same app with sandbox-backed dependencies. The shared core (error shape, access log, docs,
 * health) is registered here; each feature then registers its own routes (the flow step brings
 * Marketo's Self-Service Flow Step interface, its definition included).
 */
export async function buildApp (deps: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    bodyLimit: BODY_LIMIT_BYTES,
    // Refuse rather than repair: a body that is not what the interface says gets a 400 naming why.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    disableRequestLogging: true // one line per request instead, from src/http/access-log.ts
  })
  registerAccessLog(app)
  const metrics = deps.metrics
  if (metrics !== undefined) {
    // The route's template (`/submitAsyncAction`, `/getPicklist`), never the URL: a URL's query or
    // an unknown path would make a label per request. Unmatched requests share one label.
    app.addHook('onResponse', async (request, reply) => {
      metrics.httpRequestDuration.observe({ method: request.method, route: request.routeOptions.url ?? 'unmatched', status_code: String(reply.statusCode) }, reply.elapsedTime / 1000)
    })
  }
  // Marketo speaks JSON only; any other media type is a 415, not a string body that fails later.
  app.removeContentTypeParser('text/plain')
  registerJsonBodyParser(app)
  app.setErrorHandler(replyWithError)
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send({ statusCode: 404, code: 'NOT_FOUND', error: 'Not Found', message: `no route ${request.method} ${request.url.split('?')[0]}` })
  })
  app.addSchema(ErrorResponse)

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'marketo-dynamics-sync',
        description: 'Every route of the service. Marketo installs the flow step from `/openapi.json` (the Self-Service Flow Step definition); this document is for developers.',
        version: packageJson.version
      },
      servers: [{ url: deps.config.http.publicUrl }],
      components: {
        securitySchemes: {
          apiKey: { type: 'apiKey', name: 'x-api-key', in: 'header' },
          // The admin API's key (ADMIN_API_KEY, src/admin/admin-auth.ts): a bearer token, or Basic with any user name.
          ...(deps.config.admin.apiKey === undefined ? {} : { adminBearer: { type: 'http', scheme: 'bearer' }, adminBasic: { type: 'http', scheme: 'basic' } })
        }
      }
    }
  })
  await app.register(swaggerUi, { routePrefix: '/docs' })

  await app.register(healthRoutes, { redis: deps.redis, ...(deps.readinessChecks === undefined ? {} : { checks: deps.readinessChecks }) })
  const { config, logger, redis } = deps
  for (const feature of deps.features) await feature.register(app, { config, logger, redis })
  return app
}
