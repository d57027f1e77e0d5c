import { Gauge, Registry } from 'prom-client'
import { Queue } from 'bullmq'
import type { RedisClient } from '../queue/connections.ts'
import { QUEUE, type QueueName } from '../queue/names.ts'
import { SYNC_DIRECTIONS } from '../background-sync/sync-pauses.ts'
import { parkedChangeKeys, queuePrefix } from '../queue/redis-keys.ts'
import { flowStepIntakeKeys } from '../queue/flow-step-intake.ts'
import { MarketoCallBudget } from '../marketo/marketo-call-budget.ts'
import { MARKETO_CHECKPOINT } from '../background-sync/marketo-change-pass.ts'
import { SYNC_TABLES } from '../sync/field-mapping.ts'
import type { FeedDirection } from '../background-sync/checkpoints.ts'
import { readSyncLag } from './sync-progress.ts'
import type { MetricsLeader } from './metrics-leader.ts'

/**
 * The facts about the whole deployment, read from Redis at scrape time by the one process that
 * holds the metrics lease (metrics-leader.ts). They live in a registry of their own whose text is
 * served only while this process leads: the others export neither samples nor families for them,
 * so `sum()` over every worker counts each fact once. A read that does not answer within
 * `readTimeoutMs` (Redis down: a worker connection queues commands until it is back) leaves the
 * gauges out of that scrape rather than hanging it.
 */

export interface ClusterGaugesOptions {
  readonly redis: RedisClient
  readonly keyPrefix: string
  readonly leader: Pick<MetricsLeader, 'isLeader'>
  readonly dailyCallBudget: number
  readonly readTimeoutMs?: number
}

const QUEUE_NAMES: readonly QueueName[] = Object.values(QUEUE)
const QUEUE_STATES = ['waiting', 'active', 'delayed', 'failed'] as const
const DYNAMICS_FEEDS = SYNC_TABLES.map((table) => ({ direction: 'dynamics-to-marketo' as FeedDirection, table }))
const FEEDS = [...DYNAMICS_FEEDS, { direction: MARKETO_CHECKPOINT.direction as FeedDirection, table: MARKETO_CHECKPOINT.table }]

export class ClusterGauges {
  readonly registry = new Registry()
  readonly #options: ClusterGaugesOptions
  /** Made on first use: BullMQ writes a queue's `meta` key when a Queue object starts, and a process that is never scraped should leave Redis as it found it. */
  readonly #queues = new Map<QueueName, Queue>()
  readonly #budget: MarketoCallBudget
  readonly #queueDepth = new Gauge({ name: 'mds_queue_jobs', help: 'Jobs in each queue by state (waiting includes prioritized); exported by one process.', labelNames: ['queue', 'state'], registers: [this.registry] })
  readonly #intake = new Gauge({ name: 'mds_intake_entries', help: 'Flow-step invocations in the intake stream: `length` (XLEN, moved or not) and `pending` (read by a mover, not yet acknowledged); exported by one process.', labelNames: ['kind'], registers: [this.registry] })
  readonly #lag = new Gauge({ name: 'mds_sync_lag_seconds', help: 'Age of the oldest change that may not be applied yet, per direction: now minus when the last caught-up pass began (README, Metrics); exported by one process.', labelNames: ['direction'], registers: [this.registry] })
  readonly #callsToday = new Gauge({ name: 'mds_marketo_calls_today', help: 'Marketo REST calls our processes spent in the current Marketo day (resets 12:00 AM CST); exported by one process.', registers: [this.registry] })
  readonly #budgetGauge = new Gauge({ name: 'mds_marketo_daily_call_budget', help: 'MARKETO_DAILY_CALL_BUDGET, our share of the instance\'s daily calls; exported by one process.', registers: [this.registry] })
  readonly #parked = new Gauge({ name: 'mds_parked_changes', help: 'Background-sync changes parked because a side refused them, by direction; exported by one process.', labelNames: ['direction'], registers: [this.registry] })

  constructor (options: ClusterGaugesOptions) {
    this.#options = options
    this.#budget = new MarketoCallBudget(options.redis, { keyPrefix: options.keyPrefix, dailyBudget: options.dailyCallBudget })
  }

  /** The exposition text of the cluster gauges, or '' when another process exports them. */
  async metrics (): Promise<string> {
    if (!this.#options.leader.isLeader) return ''
    this.registry.resetMetrics()
    const read = this.#read()
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<false>((resolve) => { timer = setTimeout(() => { resolve(false) }, this.#options.readTimeoutMs ?? 2_000) })
    const answered = await Promise.race([read.then(() => true, () => false), timeout]).finally(() => { clearTimeout(timer) })
    // A lease lost while reading (a long pause) exports nothing: the new leader does.
    if (!answered || !this.#options.leader.isLeader) {
      read.catch(() => undefined)
      return ''
    }
    return await this.registry.metrics()
  }

  async #read (): Promise<void> {
    const { redis, keyPrefix } = this.#options
    await Promise.all([
      ...QUEUE_NAMES.map((name) => this.queue(name)).map(async (queue) => {
        const counts = await queue.getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'failed')
        const value: Record<typeof QUEUE_STATES[number], number> = {
          waiting: (counts.waiting ?? 0) + (counts.prioritized ?? 0),
          active: counts.active ?? 0,
          delayed: counts.delayed ?? 0,
          failed: counts.failed ?? 0
        }
        for (const state of QUEUE_STATES) this.#queueDepth.set({ queue: queue.name, state }, value[state])
      }),
      (async () => {
        const intake = flowStepIntakeKeys(keyPrefix)
        const length = await redis.xlen(intake.stream)
        // XPENDING's summary form: [count, first id, last id, consumers]. No group yet: nothing pending.
        const summary = await redis.xpending(intake.stream, intake.group).catch(() => [0]) as [number, ...unknown[]]
        this.#intake.set({ kind: 'length' }, length)
        this.#intake.set({ kind: 'pending' }, Number(summary[0] ?? 0))
      })(),
      (async () => {
        const today = await this.#budget.today()
        const dailyBudget = this.#options.dailyCallBudget
        this.#callsToday.set(dailyBudget - today.remaining)
        this.#budgetGauge.set(dailyBudget)
        const lags = await readSyncLag(redis, keyPrefix, FEEDS, today.now)
        const byDirection = new Map<string, number>()
        for (const lag of lags) byDirection.set(lag.direction, Math.max(byDirection.get(lag.direction) ?? 0, lag.seconds))
        for (const [direction, seconds] of byDirection) this.#lag.set({ direction }, seconds)
      })(),
      (async () => {
        // Entry ids begin with their direction (parked-changes.ts): counted without reading the entries.
        const ids = await redis.zrange(parkedChangeKeys(keyPrefix).index, '0', '-1')
        // Both directions at 0 when none is parked: a series that does not exist cannot increase(),
        // so ParkedChangesGrowing (prometheus-alerts.yml) would miss the first burst in that direction.
        const byDirection = new Map<string, number>(SYNC_DIRECTIONS.map((direction) => [direction, 0]))
        for (const id of ids) {
          const direction = id.split(':')[0] ?? ''
          byDirection.set(direction, (byDirection.get(direction) ?? 0) + 1)
        }
        for (const [direction, count] of byDirection) this.#parked.set({ direction }, count)
      })()
    ])
  }

  /** This process's reader of one queue (the readiness check of the sync's schedulers uses it too). */
  queue (name: QueueName): Queue {
    let queue = this.#queues.get(name)
    if (queue === undefined) {
      queue = new Queue(name, { connection: this.#options.redis, prefix: queuePrefix(this.#options.keyPrefix, name) })
      // Reading needs no listener of its own, but a Queue without an `error` listener throws on one.
      queue.on('error', () => undefined)
      this.#queues.set(name, queue)
    }
    return queue
  }

  async close (): Promise<void> {
    await Promise.all([...this.#queues.values()].map(async (queue) => { await queue.close() }))
  }
}
