import { cpus } from 'node:os'
import { setTimeout as delay } from 'node:timers/promises'
import { Redis } from 'ioredis'
import { LeadTimeline, atRate } from './lib/lead-timeline.ts'
import { machineCpuTicks, ownCpuSeconds, processCpuSeconds, redisCpuSeconds } from './lib/cpu-usage.ts'
import { round, summarise } from './lib/percentiles.ts'
import { printTable, say, writeResult } from './lib/result-file.ts'
import { BENCH_SERVICE_ENV, startServiceStack, type ServiceStack } from './lib/service-stack.ts'

/**
 * Time to lead: new persons through the whole sandbox (emulated Marketo runs a trigger campaign
 * per person → API → Redis → worker → Dataverse emulator answering after 50 ms → callback job →
 * Marketo's callback endpoint). Steady phase: 100 persons/s for 60 s, time from the invocation to
 * the lead being stored in Dataverse and to the callback being accepted, p50/p95/p99 (target: p95
 * ≤ 0.5 s to the lead). Then a ceiling search: the rate doubles every step until the workers stop
 * keeping up, with 1 and then 2 worker processes, and the CPU of every process, Redis and the
 * Dataverse request concurrency are printed to say what binds it.
 */

const NAME = 'create-latency'
const STEADY_RATE = 100
const STEADY_SECONDS = Number(process.env.BENCH_CREATE_SECONDS ?? 60)
const DATAVERSE_LATENCY_MS = 50
const STEP_SECONDS = Number(process.env.BENCH_CEILING_STEP_SECONDS ?? 6)
const CEILING_RATES = [150, 300, 600, 1200] as const
const DRAIN_LIMIT_MS = 20_000
/**
 * Worker settings of this run. Dataverse allows 52 concurrent requests per user (reference §5):
 * one worker may use 48 of them, two share them at 26 each. Each new person costs three Dataverse
 * requests (lead and contact look-ups in parallel, then the create), so at 100 persons/s and 50 ms
 * about 15 are in flight on average — a limit of 24 queued the bursts (p95 ~1 s), 48 does not.
 * The defaults (WORKER_CONCURRENCY 16, DYNAMICS_MAX_CONCURRENCY 16) are measured too, last.
 */
const TUNED_WORKER_ENV = { WORKER_CONCURRENCY: '48', DYNAMICS_MAX_CONCURRENCY: '48' }
const TUNED_PAIR_WORKER_ENV = { WORKER_CONCURRENCY: '48', DYNAMICS_MAX_CONCURRENCY: '26' }

interface StepFigures {
  readonly workers: number
  readonly workerEnv: string
  readonly offeredPerSecond: number
  readonly leadsPerSecond: number
  readonly lagAtEndMs: number
  readonly sustained: boolean
  readonly toLeadP95Ms: number
  readonly dataverseRequestsPerSecond: number
  /** Little's law: requests/s × 50 ms, a lower bound of the requests in flight. */
  readonly dataverseInFlight: number
  readonly dataverseConcurrencyLimit: number
  readonly cpu: Readonly<Record<string, number>>
  /** Share of the whole machine's CPU time that was busy (other tenants included), 0–1. */
  readonly machineBusy: number
}

export async function runCreateLatencyBenchmark (): Promise<void> {
  say(NAME, `steady ${STEADY_RATE}/s for ${STEADY_SECONDS} s (BENCH_CREATE_SECONDS), Dataverse latency ${DATAVERSE_LATENCY_MS} ms, ` +
    `workers with ${JSON.stringify(TUNED_WORKER_ENV)}; ceiling steps of ${STEP_SECONDS} s at ${CEILING_RATES.join(', ')}/s`)
  const stack = await startServiceStack({ dataverseLatencyMs: DATAVERSE_LATENCY_MS, install: true, workers: 0 })
  const redis = new Redis(stack.sandbox.redis.url, { lazyConnect: false })
  // Every email is new, so no look-up result depends on earlier rows: emptying the emulator's
  // tables every second keeps its linear scans (and this process's CPU) flat during the run.
  const clearer = setInterval(() => { stack.sandbox.dataverse.store.clear() }, 1_000)
  const timeline = new LeadTimeline(stack.sandbox, stack.installed!)
  const steps: StepFigures[] = []
  let steady: Record<string, unknown> = {}
  try {
    await stack.startWorker(TUNED_WORKER_ENV)
    await warmUp(timeline)

    // Steady phase.
    const persons = timeline.createPersons(STEADY_RATE * STEADY_SECONDS)
    const started = performance.now()
    await atRate(STEADY_RATE, STEADY_SECONDS, (i) => { void timeline.invoke([persons[i]!]) })
    const sendSeconds = (performance.now() - started) / 1000
    await settle(timeline, DRAIN_LIMIT_MS)
    const times = timeline.times()
    const toLead = summarise(times.filter((t) => t.leadAt !== undefined).map((t) => t.leadAt! - t.sentAt))
    const toCallback = summarise(times.filter((t) => t.callbackAt !== undefined).map((t) => t.callbackAt! - t.sentAt))
    steady = {
      ratePerSecond: STEADY_RATE,
      seconds: round(sendSeconds, 1),
      persons: times.length,
      refused: timeline.refused,
      leadsMissing: times.filter((t) => t.leadAt === undefined).length,
      callbacksMissing: times.filter((t) => t.callbackAt === undefined).length,
      toLeadMs: toLead,
      toCallbackMs: toCallback,
      meetsTarget: toLead.p95 <= 500
    }
    say(NAME, `steady: to lead p50 ${toLead.p50} / p95 ${toLead.p95} / p99 ${toLead.p99} ms; to callback p50 ${toCallback.p50} / p95 ${toCallback.p95} / p99 ${toCallback.p99} ms`)

    // Ceiling search, 1 then 2 tuned workers, then the defaults.
    for (const workers of [1, 2]) {
      const workerEnv = workers === 1 ? TUNED_WORKER_ENV : TUNED_PAIR_WORKER_ENV
      if (workers > 1) await stack.stopWorkers()
      while (stack.workers.length < workers) await stack.startWorker(workerEnv)
      await warmUp(timeline)
      for (const rate of CEILING_RATES) {
        const step = await measureStep(stack, redis, timeline, rate, { workers, workerEnv: 'tuned', limit: workers * Number(workerEnv.DYNAMICS_MAX_CONCURRENCY) })
        steps.push(step)
        if (!step.sustained) break
      }
    }
    await stack.stopWorkers()
    await stack.startWorker()
    await warmUp(timeline)
    steps.push(await measureStep(stack, redis, timeline, STEADY_RATE, { workers: 1, workerEnv: 'defaults', limit: 16 }))
  } finally {
    clearInterval(clearer)
    timeline.close()
    redis.disconnect()
    await stack.close()
  }

  const steadyRow = (label: string, s: ReturnType<typeof summarise>) => ({ measure: label, count: s.count, 'p50 ms': s.p50, 'p95 ms': s.p95, 'p99 ms': s.p99, 'max ms': s.max })
  printTable(`Time to lead, ${STEADY_RATE} new persons/s for ${STEADY_SECONDS} s, Dataverse answering after ${DATAVERSE_LATENCY_MS} ms (1 worker)`, [
    steadyRow('invocation → lead in Dynamics', steady.toLeadMs as ReturnType<typeof summarise>),
    steadyRow('invocation → Marketo callback', steady.toCallbackMs as ReturnType<typeof summarise>)
  ])
  printTable('Ceiling search (a step is sustained when the leads keep pace and the lag stays under 1 s)', steps.map((s) => ({
    workers: s.workers,
    config: s.workerEnv,
    'offered/s': s.offeredPerSecond,
    'leads/s': s.leadsPerSecond,
    'lag ms': s.lagAtEndMs,
    sustained: s.sustained,
    'Dataverse req/s': s.dataverseRequestsPerSecond,
    'in flight≈': s.dataverseInFlight,
    limit: s.dataverseConcurrencyLimit,
    ...Object.fromEntries(Object.entries(s.cpu).map(([name, value]) => [`${name} cpu`, value])),
    'machine busy': s.machineBusy
  })))
  const ceilings = [1, 2].map((workers) => ceilingOf(steps.filter((s) => s.workers === workers && s.workerEnv === 'tuned'), workers))
  for (const c of ceilings) say(NAME, `ceiling with ${c.workers} worker(s): ~${c.leadsPerSecond} leads/s; bound by ${c.boundBy}`)
  const defaults = steps.find((s) => s.workerEnv === 'defaults')
  if (defaults !== undefined) say(NAME, `with the default WORKER_CONCURRENCY/DYNAMICS_MAX_CONCURRENCY (16/16) one worker completes ${defaults.leadsPerSecond} leads/s of ${defaults.offeredPerSecond}/s offered`)
  const path = await writeResult(NAME, {
    settings: {
      steadyRatePerSecond: STEADY_RATE,
      steadySeconds: STEADY_SECONDS,
      dataverseLatencyMs: DATAVERSE_LATENCY_MS,
      ceilingStepSeconds: STEP_SECONDS,
      ceilingRates: CEILING_RATES,
      workerEnv: TUNED_WORKER_ENV,
      serviceEnv: BENCH_SERVICE_ENV
    },
    targets: { toLeadP95Ms: 500 },
    steady,
    ceilings,
    steps
  })
  say(NAME, `results written to ${path}`)
}

/** A few seconds of traffic, not measured: JIT, connection pools, MSAL token. */
async function warmUp (timeline: LeadTimeline): Promise<void> {
  const persons = timeline.createPersons(100)
  await atRate(50, 2, (i) => { void timeline.invoke([persons[i]!]) })
  await settle(timeline, DRAIN_LIMIT_MS)
  timeline.reset()
}

/** Waits until every sent person has its lead and callback, or the limit passes. */
async function settle (timeline: LeadTimeline, limitMs: number): Promise<void> {
  const deadline = performance.now() + limitMs
  while (performance.now() < deadline) {
    const times = timeline.times()
    if (times.every((t) => t.leadAt !== undefined && t.callbackAt !== undefined)) return
    await delay(100)
  }
}

async function measureStep (
  stack: ServiceStack,
  redis: Redis,
  timeline: LeadTimeline,
  rate: number,
  config: { workers: number, workerEnv: string, limit: number }
): Promise<StepFigures> {
  const persons = timeline.createPersons(Math.round(rate * STEP_SECONDS))
  const processes = [['api', stack.api?.pid] as const, ...stack.workers.map((w) => [w.name, w.pid] as const)]
  const cpuBefore = await Promise.all(processes.map(async ([, pid]) => await processCpuSeconds(pid)))
  const redisBefore = await redisCpuSeconds(redis)
  const ownBefore = ownCpuSeconds()
  const dataverseBefore = stack.sandbox.dataverse.requestCount()
  const machineBefore = await machineCpuTicks()
  const start = performance.now()
  const half = start + STEP_SECONDS * 500
  await atRate(rate, STEP_SECONDS, (i) => { void timeline.invoke([persons[i]!]) })
  const end = performance.now()
  const wall = (end - start) / 1000
  const cpuAfter = await Promise.all(processes.map(async ([, pid]) => await processCpuSeconds(pid)))
  const cpu: Record<string, number> = {}
  processes.forEach(([name], i) => { cpu[name] = round((cpuAfter[i]! - cpuBefore[i]!) / wall) })
  cpu.redis = round((await redisCpuSeconds(redis) - redisBefore) / wall)
  cpu['bench+emulators'] = round((ownCpuSeconds() - ownBefore) / wall)
  const dataverseRequestsPerSecond = round((stack.sandbox.dataverse.requestCount() - dataverseBefore) / wall, 0)
  const machineAfter = await machineCpuTicks()
  const machineBusy = round((machineAfter.busy - machineBefore.busy) / Math.max(1, machineAfter.total - machineBefore.total))

  const times = timeline.times()
  const leadsInSecondHalf = times.filter((t) => t.leadAt !== undefined && t.leadAt >= half && t.leadAt <= end).length
  const oldestPending = times.filter((t) => t.leadAt === undefined).reduce((oldest, t) => Math.min(oldest, t.sentAt), end)
  const lagAtEndMs = round(end - oldestPending, 0)
  const leadsPerSecond = round(leadsInSecondHalf / ((end - half) / 1000), 0)
  const toLeadP95Ms = summarise(times.filter((t) => t.leadAt !== undefined).map((t) => t.leadAt! - t.sentAt)).p95
  const step: StepFigures = {
    workers: config.workers,
    workerEnv: config.workerEnv,
    offeredPerSecond: rate,
    leadsPerSecond,
    lagAtEndMs,
    sustained: leadsPerSecond >= rate * 0.9 && lagAtEndMs < 1_000,
    toLeadP95Ms,
    dataverseRequestsPerSecond,
    dataverseInFlight: round(dataverseRequestsPerSecond * DATAVERSE_LATENCY_MS / 1000, 1),
    dataverseConcurrencyLimit: config.limit,
    cpu,
    machineBusy
  }
  say(NAME, `${config.workers} worker(s) ${config.workerEnv} at ${rate}/s: ${leadsPerSecond} leads/s, lag ${lagAtEndMs} ms, ${dataverseRequestsPerSecond} Dataverse req/s, cpu ${JSON.stringify(cpu)}, machine ${Math.round(machineBusy * 100)} % busy`)
  await settle(timeline, DRAIN_LIMIT_MS)
  timeline.reset()
  return step
}

/** The highest rate completed, and a judgement of what stopped it from the step that failed. */
function ceilingOf (steps: readonly StepFigures[], workers: number): { workers: number, leadsPerSecond: number, sustainedUpTo: number, boundBy: string } {
  const best = Math.max(0, ...steps.map((s) => s.leadsPerSecond))
  const sustainedUpTo = Math.max(0, ...steps.filter((s) => s.sustained).map((s) => s.offeredPerSecond))
  const failed = steps.find((s) => !s.sustained)
  if (failed === undefined) return { workers, leadsPerSecond: best, sustainedUpTo, boundBy: `not reached (every step up to ${sustainedUpTo}/s was sustained)` }
  const reasons: string[] = []
  if (failed.dataverseInFlight >= failed.dataverseConcurrencyLimit * 0.8) reasons.push(`Dataverse concurrency (≈${failed.dataverseInFlight} of ${failed.dataverseConcurrencyLimit} requests in flight)`)
  const busiestWorker = Math.max(...Object.entries(failed.cpu).filter(([name]) => name.startsWith('worker')).map(([, v]) => v))
  if (busiestWorker >= 0.85) reasons.push(`worker CPU (${busiestWorker} of one core)`)
  if ((failed.cpu.redis ?? 0) >= 0.85) reasons.push(`Redis CPU (${failed.cpu.redis})`)
  if ((failed.cpu.api ?? 0) >= 0.85) reasons.push(`API CPU (${failed.cpu.api})`)
  // The emulated Dataverse and Marketo and the load generator share this one thread.
  const bench = failed.cpu['bench+emulators'] ?? 0
  if (bench >= 0.85) reasons.push(`the bench process itself (emulators and load generator on one thread: ${bench} of one core)`)
  const ours = round(Object.values(failed.cpu).reduce((sum, v) => sum + v, 0))
  const cores = cpus().length
  if (failed.machineBusy >= 0.85) {
    reasons.push(`machine CPU (${Math.round(failed.machineBusy * 100)} % of ${cores} cores busy; API, workers, Redis and the bench's emulators used ${ours} cores, other processes on the machine the rest)`)
  }
  return { workers, leadsPerSecond: best, sustainedUpTo, boundBy: reasons.length === 0 ? 'undetermined (no resource saturated; see the step figures)' : reasons.join('; ') }
}

if (import.meta.url === `file://${process.argv[1]}`) await runCreateLatencyBenchmark()
