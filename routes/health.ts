import type { FastifyPluginAsync } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { RedisClient } from '../src/queue/connections.ts'
import { Health, Live } from '../src/schemas/health.ts'
import { checkDependencies, readinessStatus, type DependencyCheck } from '../src/metrics/readiness.ts'

export interface HealthRoutesOptions {
  readonly redis: Pick<RedisClient, 'ping'>
  /** Checked besides Redis (a Dynamics token, a Marketo token, the sync's schedulers), each named in the answer. */
  readonly checks?: readonly DependencyCheck[]
}

/**
 * For load balancers and orchestrators: live = the process answers; ready = it can do its work,
 * every dependency it checked named in the body, so a 503 says which one failed. Served on the
 * API's public port (compose and load balancers use it) and on every process's ops port.
 */
const healthRoutes: FastifyPluginAsync<HealthRoutesOptions> = async (fastify, options) => {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const redisCheck: DependencyCheck = { name: 'redis', check: async () => { await options.redis.ping() } }
  const checks = [redisCheck, ...(options.checks ?? [])]
  app.get('/health/live', { schema: { tags: ['operations'], response: { 200: Live } } }, async () => ({ status: 'ok' as const }))
  app.get('/health/ready', { schema: { tags: ['operations'], response: { 200: Health, 503: Health } } }, async (_request, reply) => {
    const states = await checkDependencies(checks)
    const status = readinessStatus(states)
    const redis = states.find((state) => state.name === 'redis')?.ok ?? false
    return await reply.code(status === 'unavailable' ? 503 : 200).send({ status, redis, checks: states })
  })
}

export default healthRoutes
