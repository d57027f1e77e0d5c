import type { FastifyPluginAsync } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { RedisClient } from '../src/queue/connections.ts'
import { Type } from 'typebox'

export interface HealthRoutesOptions {
  readonly redis: Pick<RedisClient, 'ping'>
}

const Health = Type.Object({ status: Type.Union([Type.Literal('ok'), Type.Literal('unavailable')]), redis: Type.Boolean() })

/** For load balancers and orchestrators: live = the process answers; ready = it can store work. */
const healthRoutes: FastifyPluginAsync<HealthRoutesOptions> = async (fastify, options) => {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  app.get('/health/live', { schema: { tags: ['operations'], response: { 200: Type.Object({ status: Type.Literal('ok') }) } } }, async () => ({ status: 'ok' as const }))
  app.get('/health/ready', { schema: { tags: ['operations'], response: { 200: Health, 503: Health } } }, async (_request, reply) => {
    const redis = await options.redis.ping().then(() => true, () => false)
    return await reply.code(redis ? 200 : 503).send({ status: redis ? 'ok' : 'unavailable', redis })
  })
}

export default healthRoutes
