import type { Registry } from 'prom-client'
import type { ClusterGauges } from './cluster-gauges.ts'

/**
 * One scrape: the process's own registry, then the cluster gauges when this process leads. Two
 * registries with disjoint metric names, so their texts are one valid exposition one after the other.
 */
export interface MetricsExposition {
  scrape (): Promise<{ readonly contentType: string, readonly text: string }>
}

export function metricsExposition (registry: Registry, cluster?: Pick<ClusterGauges, 'metrics'>): MetricsExposition {
  return {
    async scrape () {
      const own = await registry.metrics()
      const shared = cluster === undefined ? '' : await cluster.metrics()
      return { contentType: registry.contentType, text: shared === '' ? own : `${own.trimEnd()}\n${shared}` }
    }
  }
}
