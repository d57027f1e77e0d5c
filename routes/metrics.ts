import type { FastifyPluginAsync } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { MetricsExposition } from '../src/metrics/metrics-exposition.ts'

export interface MetricsRoutesOptions {
  readonly exposition: MetricsExposition
}

/** Prometheus' scrape endpoint, on the ops port only: never on the public port Marketo reaches. */
const metricsRoutes: FastifyPluginAsync<MetricsRoutesOptions> = async (fastify, options) => {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  app.get('/metrics', {
    schema: {
      tags: ['operations'],
      description: 'Prometheus text exposition format 0.0.4: this process\'s metrics, and the cluster-wide gauges when this process holds the metrics lease.',
      response: { 200: Type.String() }
    }
  }, async (_request, reply) => {
    const { contentType, text } = await options.exposition.scrape()
    return await reply.type(contentType).send(text)
  })
}

export default metricsRoutes
