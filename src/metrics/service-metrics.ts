import { Counter, Gauge, Histogram, collectDefaultMetrics, type Registry } from 'prom-client'

/**
 * The per-process metrics (issue 13 §1), on a Registry the process creates and passes in: no
 * default global registry, so two apps built in one test process never share a counter.
 *
 * Every metric here is a counter, a histogram or a fact about this process alone, so the sum a
 * Prometheus query takes over every process is the cluster's total. The facts about the cluster
 * (queue depths, backlog, lag, budget, parked) are exported by one process at a time instead
 * (cluster-gauges.ts). Labels hold bounded values only: route templates, queue names, directions,
 * error codes; never an id, an email or a field value.
 */

export type ProcessRole = 'api' | 'worker'

export interface ServiceMetrics {
  readonly registry: Registry
  /** API's public port: seconds per request, by route template (not the URL) and status code. */
  readonly httpRequestDuration: Histogram<'method' | 'route' | 'status_code'>
  /** Seconds from a job's start to its end, by queue and outcome (`completed`, `failed`, `retried`). */
  readonly jobDuration: Histogram<'queue' | 'outcome'>
  readonly jobsFinished: Counter<'queue' | 'outcome'>
  /** Records each background-sync pass decided, by direction, entity (lead, contact, person) and outcome. */
  readonly recordsSynced: Counter<'direction' | 'entity' | 'outcome'>
  /** Background-sync passes, by direction and how they ended (`caught-up`, `advanced`, `reset`, `skipped`). */
  readonly syncPasses: Counter<'direction' | 'outcome'>
  /** One per request answered (or failed) by Dynamics or Marketo. */
  readonly outsideCalls: Counter<'service'>
  /** Calls that failed, by service and a bounded code: `429`, `606`, `607`, `615`, `http_<status>`, a Marketo code, `network`, `timeout`. */
  readonly outsideCallErrors: Counter<'service' | 'code'>
  /** 1 in every running worker process: `sum(mds_worker_up)` is how many are alive. */
  readonly workerUp: Gauge
}

/** Buckets from 5 ms (a health probe) to 10 s (a slow flow-step append under a Redis failover). */
const HTTP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
/** Jobs run from milliseconds (an idle poll) to minutes (a first sync's 20 pages). */
const JOB_BUCKETS = [0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300]

export function createServiceMetrics (registry: Registry, role: ProcessRole): ServiceMetrics {
  // Process CPU, memory, event-loop lag and open handles: what a memory or hang alert needs.
  collectDefaultMetrics({ register: registry, prefix: 'mds_' })
  registry.setDefaultLabels({ role })
  // Registered by workers only: an API exporting 0 would read as a dead worker.
  const workerUp = new Gauge({ name: 'mds_worker_up', help: 'One per running worker process; absent or summing to 0 means no worker is alive.', registers: role === 'worker' ? [registry] : [] })
  if (role === 'worker') workerUp.set(1)
  return {
    registry,
    httpRequestDuration: new Histogram({ name: 'mds_http_request_duration_seconds', help: 'Requests to the public API port, by route template and status code.', labelNames: ['method', 'route', 'status_code'], buckets: HTTP_BUCKETS, registers: [registry] }),
    jobDuration: new Histogram({ name: 'mds_job_duration_seconds', help: 'Seconds a job ran in this worker, by queue and outcome.', labelNames: ['queue', 'outcome'], buckets: JOB_BUCKETS, registers: [registry] }),
    jobsFinished: new Counter({ name: 'mds_jobs_total', help: 'Jobs this worker finished, by queue and outcome (completed; failed for good; failed and retried).', labelNames: ['queue', 'outcome'], registers: [registry] }),
    recordsSynced: new Counter({ name: 'mds_sync_records_total', help: 'Records the background sync decided, by direction, entity and outcome.', labelNames: ['direction', 'entity', 'outcome'], registers: [registry] }),
    syncPasses: new Counter({ name: 'mds_sync_passes_total', help: 'Background-sync passes (one page of a change feed), by direction and how they ended.', labelNames: ['direction', 'outcome'], registers: [registry] }),
    outsideCalls: new Counter({ name: 'mds_outside_calls_total', help: 'Requests to Dynamics (Dataverse) and Marketo (REST), answered or failed.', labelNames: ['service'], registers: [registry] }),
    outsideCallErrors: new Counter({ name: 'mds_outside_call_errors_total', help: 'Failed requests to Dynamics and Marketo, by a bounded code (429, 606, 607, 615, http_<status>, network, timeout, a Marketo code).', labelNames: ['service', 'code'], registers: [registry] }),
    workerUp
  }
}
