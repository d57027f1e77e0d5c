import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import healthRoutes, { type HealthRoutesOptions } from '../../routes/health.ts'
import metricsRoutes from '../../routes/metrics.ts'
import type { MetricsExposition } from '../metrics/metrics-exposition.ts'

export interface OpsServerDeps {
  readonly logger: Logger
  readonly exposition: MetricsExposition
  readonly health: HealthRoutesOptions
}

/**
 * Every process's small ops HTTP server (OPS_HOST:OPS_PORT): `/metrics` for Prometheus and
 * `/health/live`, `/health/ready` for orchestrators. A port of its own, so a worker (which serves
 * nothing else) can be probed and scraped, and the API's metrics stay off the public port Marketo
 * reaches.
 */
export async function buildOpsServer (deps: OpsServerDeps): Promise<FastifyInstance> {
  // At warn: Fastify's per-request info lines are left out (a scrape every 15 s would drown the log).
  const app = Fastify({ loggerInstance: deps.logger.child({ server: 'ops' }, { level: 'warn' }) as FastifyBaseLogger, forceCloseConnections: true })
  await app.register(healthRoutes, deps.health)
  await app.register(metricsRoutes, { exposition: deps.exposition })
  return app
}
