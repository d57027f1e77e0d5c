import t from 'tap'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { load as loadYaml } from 'js-yaml'
import { Registry } from 'prom-client'
import { createServiceMetrics } from '../../src/metrics/service-metrics.ts'
import { ClusterGauges } from '../../src/metrics/cluster-gauges.ts'
import { createWorkerRedisConnection } from '../../src/queue/connections.ts'
import { startLocalRedis } from '../../sandbox/redis-server.ts'

/**
 * The example alert rules ship with the repo: every metric they name must be one the service
 * exports, or an alert silently never fires. The names are taken from registries built by the
 * service's own code (a worker's, and the cluster gauges' read from a real Redis).
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url))

interface Rule { alert?: string, expr: string, for?: string, annotations?: Record<string, string> }
interface RuleFile { groups: Array<{ name: string, rules: Rule[] }> }

/** PromQL words that are not metric names: functions, aggregations, keywords, label names in by(). */
const PROMQL_WORDS = new Set(['max', 'min', 'sum', 'avg', 'count', 'by', 'without', 'absent', 'delta', 'rate', 'increase', 'or', 'and', 'unless', 'on', 'ignoring', 'direction', 'queue', 'state', 'service', 'code'])

function metricNames (expr: string): string[] {
  const withoutStrings = expr.replace(/"[^"]*"/g, '""').replace(/\[[^\]]*\]/g, '')
  return [...withoutStrings.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)].map((match) => match[0]).filter((word) => !PROMQL_WORDS.has(word))
}

t.test('every metric the alert rules use is one the service exports', async (t) => {
  const rules = loadYaml(readFileSync(`${ROOT}prometheus-alerts.yml`, 'utf8')) as RuleFile
  const all = rules.groups.flatMap((group) => group.rules)
  t.same(all.map((rule) => rule.alert).filter((name) => name !== undefined).sort(),
    ['FlowStepQueueBacklog', 'MarketoBudgetNearlySpent', 'NoWorkerAlive', 'ParkedChangesGrowing', 'SyncLagTooHigh'], 'lag, budget, parked, no worker (and backlog)')

  const redis = await startLocalRedis()
  t.teardown(async () => { await redis.stop() })
  const connection = createWorkerRedisConnection(redis.url, 'test-alerts')
  t.teardown(() => { connection.disconnect() })
  const registry = new Registry()
  createServiceMetrics(registry, 'worker')
  const cluster = new ClusterGauges({ redis: connection, keyPrefix: 'mds-alerts', leader: { isLeader: true }, dailyCallBudget: 10 })
  t.teardown(async () => { await cluster.close() })
  const text = `${await registry.metrics()}\n${await cluster.metrics()}`
  const exported = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((match) => match[1]!))
  t.ok(exported.has('mds_queue_jobs'), 'the cluster gauges were read')

  for (const rule of all) {
    const names = metricNames(rule.expr)
    t.ok(names.length > 0, `${rule.alert}: names a metric`)
    for (const name of names) t.ok(exported.has(name), `${rule.alert}: ${name} is exported`)
  }
})

t.test('cluster gauges are read with max(), never sum(): two leaders\' series can overlap during a hand-over', async (t) => {
  const source = readFileSync(`${ROOT}prometheus-alerts.yml`, 'utf8')
  const rules = (loadYaml(source) as RuleFile).groups.flatMap((group) => group.rules)
  const clusterGauges = ['mds_queue_jobs', 'mds_intake_entries', 'mds_parked_changes', 'mds_sync_lag_seconds', 'mds_marketo_calls_today', 'mds_marketo_daily_call_budget']
  for (const rule of rules) {
    for (const gauge of clusterGauges) t.notMatch(rule.expr, new RegExp(`sum[^(]*\\([^)]*${gauge}`), `${rule.alert}: no sum() over ${gauge}`)
  }
  const header = source.split('\n').filter((line) => line.startsWith('#')).join('\n')
  t.notMatch(header, /`max\(\)` or `sum\(\)`/, 'the header does not offer sum() for the cluster gauges')
  t.match(header, /`max\(\)` over all of them/)
})
