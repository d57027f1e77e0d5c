import { setTimeout as delay } from 'node:timers/promises'
import { freePort } from '../sandbox/redis-server.ts'
import { spawnServiceProcess, type ServiceProcess } from '../sandbox/service-processes.ts'
import { waitUntilReady } from '../sandbox/wait-until-ready.ts'
import { createInvocationBodies } from './lib/invocation-bodies.ts'
import { runMaxLoad, runPacedLoad, type LoadPoint, type LoadTarget } from './lib/load.ts'
import { round } from './lib/percentiles.ts'
import { printTable, say, writeResult } from './lib/result-file.ts'
import { PROJECT_ROOT, startServiceStack } from './lib/service-stack.ts'
import { stopOnSignal } from './lib/stop-on-signal.ts'
import { Writable } from 'node:stream'

/**
 * Invocation intake: `POST /submitAsyncAction` on one API process (no worker: this measures
 * accepting, not syncing), every request a distinct invocation, at 100/s, 1,000/s and the maximum,
 * with 1-person and 100-person batches. Baseline in the same run: a bare Fastify route on the same
 * Redis doing one SET (bench/lib/baseline-server.ts). Targets: p99 ≤ 10 ms at 1,000/s; maximum
 * rate ≥ 50 % of the baseline's. The API's Redis client auto-pipelines and the baseline's, as
 * specified, is bare; so the maximum of a second baseline whose client auto-pipelines too is
 * measured and its ratio printed beside the target's, for a reader who wants like against like.
 *
 * The API runs at the default log level, `info`, which writes one access line per request
 * (src/http/access-log.ts): that is the headline figure. A second API process on the same Redis at
 * `warn` (no line per request) is measured at its maximum in the same interleaved rounds, named
 * `api-warn`, so the cost of the access log can be read beside it. The API's lines are read by this
 * process, as a log collector would read them, on the same machine.
 */

const NAME = 'intake'
/** Measured at their maximum in each interleaved round (the paced points are the API's own). */
const MAX_TARGETS = ['api', 'api-warn', 'baseline', 'baseline-pipelined'] as const
const POINT_MS = Number(process.env.BENCH_INTAKE_SECONDS ?? 10) * 1000
const WARMUP_MS = 3_000
const RATES = [100, 1000] as const
const BATCH_SIZES = [1, 100] as const
const MAX_CONNECTIONS = 32
/**
 * The maximum is measured in rounds that interleave API and baselines, and each target's median
 * is compared: on a shared machine a neighbour's burst then lands on one round of one target
 * instead of deciding the ratio.
 */
const MAX_ROUNDS = 3
const MAX_POINT_MS = Number(process.env.BENCH_INTAKE_MAX_SECONDS ?? 5) * 1000
/** The headline API: the service's default level (src/config.ts). */
const API_ENV = { LOG_LEVEL: 'info' } as const
/** The same API without a line per request, beside it. */
const API_WARN_ENV = { LOG_LEVEL: 'warn' } as const

export async function runIntakeBenchmark (): Promise<void> {
  say(NAME, `points of ${POINT_MS / 1000} s (BENCH_INTAKE_SECONDS), warm-up ${WARMUP_MS / 1000} s, max rate with ${MAX_CONNECTIONS} connections in ${MAX_ROUNDS} interleaved rounds of ${MAX_POINT_MS / 1000} s (BENCH_INTAKE_MAX_SECONDS), medians compared; API at LOG_LEVEL=${API_ENV.LOG_LEVEL} (the default), api-warn at LOG_LEVEL=${API_WARN_ENV.LOG_LEVEL}`)
  const stack = await startServiceStack({ workers: 0, env: API_ENV })
  const others: Array<{ port: number, server: ServiceProcess }> = []
  const stopOthers = async () => { await Promise.all(others.map(async ({ server }) => await server.stop(10_000))) }
  const forgetOnSignal = stopOnSignal(stopOthers)
  const warnLines: string[] = []
  const startServer = async (name: string, entry: string, env: Readonly<Record<string, string>>, output = new Writable({ write (_chunk, _encoding, done) { done() } })): Promise<{ port: number, server: ServiceProcess }> => {
    const port = await freePort()
    const server = spawnServiceProcess({ name, entry, cwd: PROJECT_ROOT, env: { ...process.env, ...env, PORT: String(port) }, output })
    others.push({ port, server })
    // Ready before the next free port is picked, so two cannot be handed the same one.
    await waitUntilReady(`http://127.0.0.1:${port}/health/ready`, { timeoutMs: 30_000 })
    return { port, server }
  }
  let apiWarn, baseline, pipelinedBaseline
  try {
    apiWarn = await startServer('api-warn', 'src/server.ts', { ...stack.env, ...API_WARN_ENV }, new Writable({
      write (chunk: Buffer, _encoding, done) { if (warnLines.length < 100) warnLines.push(chunk.toString('utf8').trim()); done() }
    }))
    const baselineEnv = (autoPipelining: boolean) => ({ REDIS_URL: stack.sandbox.redis.url, AUTO_PIPELINING: autoPipelining ? '1' : '0' })
    baseline = await startServer('baseline', 'bench/lib/baseline-server.ts', baselineEnv(false))
    pipelinedBaseline = await startServer('baseline-pipelined', 'bench/lib/baseline-server.ts', baselineEnv(true))
  } catch (error) {
    await stopOthers()
    await stack.close()
    throw error
  }
  const rows: Array<Record<string, string | number>> = []
  const points: Array<{ target: string, persons: number, round?: number } & LoadPoint> = []
  try {
    const targets = {
      api: { url: `${stack.sandbox.publicUrl}/submitAsyncAction`, headers: { 'x-api-key': stack.env.SSFS_API_KEY ?? '' } },
      'api-warn': { url: `http://127.0.0.1:${apiWarn.port}/submitAsyncAction`, headers: { 'x-api-key': stack.env.SSFS_API_KEY ?? '' } },
      baseline: { url: `http://127.0.0.1:${baseline.port}/submitAsyncAction`, headers: {} },
      'baseline-pipelined': { url: `http://127.0.0.1:${pipelinedBaseline.port}/submitAsyncAction`, headers: {} }
    }
    for (const persons of BATCH_SIZES) {
      const bodies = createInvocationBodies({ callbackUrl: stack.sandbox.marketo.callbackUrl, persons })
      const target = (which: keyof typeof targets): LoadTarget => ({ ...targets[which], expectStatus: 201, nextBody: () => bodies.next().body })
      for (const which of MAX_TARGETS) await runMaxLoad(target(which), { connections: MAX_CONNECTIONS, durationMs: WARMUP_MS })

      const measure = async (which: keyof typeof targets, run: () => Promise<LoadPoint>, round?: number) => {
        const point = await run()
        points.push({ target: which, persons, ...(round === undefined ? {} : { round }), ...point })
        rows.push({
          target: which,
          persons,
          load: round === undefined ? point.mode : `${point.mode} #${round}`,
          'req/s': point.requestsPerSecond,
          'p50 ms': point.latencyMs.p50,
          'p99 ms': point.latencyMs.p99,
          errors: point.errors
        })
        say(NAME, `${which} ${persons}-person ${point.mode}${round === undefined ? '' : ` #${round}`}: ${point.requestsPerSecond} req/s, p50 ${point.latencyMs.p50} ms, p99 ${point.latencyMs.p99} ms, ${point.errors} errors`)
        await delay(500)
      }
      for (const rate of RATES) await measure('api', async () => await runPacedLoad(target('api'), { rate, durationMs: POINT_MS }))
      await measure('baseline', async () => await runPacedLoad(target('baseline'), { rate: 1000, durationMs: POINT_MS }))
      for (let round = 1; round <= MAX_ROUNDS; round++) {
        for (const which of MAX_TARGETS) {
          await measure(which, async () => await runMaxLoad(target(which), { connections: MAX_CONNECTIONS, durationMs: MAX_POINT_MS }), round)
        }
      }
    }
  } finally {
    await stopOthers()
    forgetOnSignal()
    await stack.close()
  }
  if (warnLines.length > 0) say(NAME, `api-warn wrote ${warnLines.length} line(s) at warn or above; the first: ${warnLines[0]}`)

  const find = (target: string, persons: number, mode: string) => points.find((p) => p.target === target && p.persons === persons && p.mode === mode)
  const maxRates = (target: string, persons: number) => points.filter((p) => p.target === target && p.persons === persons && p.mode === 'max').map((p) => p.requestsPerSecond)
  const summary = BATCH_SIZES.map((persons) => {
    const apiMaxRounds = maxRates('api', persons)
    const baselineMaxRounds = maxRates('baseline', persons)
    const apiMax = median(apiMaxRounds)
    const baselineMax = median(baselineMaxRounds)
    const pipelinedBaselineMax = median(maxRates('baseline-pipelined', persons))
    const apiWarnMax = median(maxRates('api-warn', persons))
    const p99At1000 = find('api', persons, '1000/s')?.latencyMs.p99 ?? Number.NaN
    return {
      persons,
      apiMaxPerSecond: apiMax,
      baselineMaxPerSecond: baselineMax,
      ratio: round(apiMax / baselineMax, 3),
      ratioPerRound: apiMaxRounds.map((api, i) => round(api / (baselineMaxRounds[i] ?? Number.NaN), 3)),
      pipelinedBaselineMaxPerSecond: pipelinedBaselineMax,
      ratioToPipelinedBaseline: round(apiMax / pipelinedBaselineMax, 3),
      apiWarnMaxPerSecond: apiWarnMax,
      apiWarnRatio: round(apiWarnMax / baselineMax, 3),
      p99At1000PerSecondMs: p99At1000,
      meetsP99Target: p99At1000 <= 10,
      meetsRatioTarget: apiMax / baselineMax >= 0.5
    }
  })
  printTable('Invocation intake (POST /submitAsyncAction, one API process)', rows)
  printTable('Intake at LOG_LEVEL=info (the default) vs baseline (bare Fastify + one Redis SET), same run, medians of the rounds; api-warn: the same API at LOG_LEVEL=warn', summary.map((s) => ({
    persons: s.persons,
    'api max/s': s.apiMaxPerSecond,
    'baseline max/s': s.baselineMaxPerSecond,
    ratio: s.ratio,
    'api-warn max/s': s.apiWarnMaxPerSecond,
    'api-warn ratio': s.apiWarnRatio,
    'pipelined baseline max/s': s.pipelinedBaselineMaxPerSecond,
    'ratio to it': s.ratioToPipelinedBaseline,
    'p99 @1000/s ms': s.p99At1000PerSecondMs,
    'p99<=10ms': s.meetsP99Target,
    'ratio>=0.5': s.meetsRatioTarget
  })))
  const path = await writeResult(NAME, {
    settings: { pointSeconds: POINT_MS / 1000, maxPointSeconds: MAX_POINT_MS / 1000, maxRounds: MAX_ROUNDS, warmupSeconds: WARMUP_MS / 1000, maxConnections: MAX_CONNECTIONS, serviceEnv: API_ENV, apiWarnEnv: API_WARN_ENV },
    targets: { p99At1000PerSecondMs: 10, minRatio: 0.5 },
    ratio: Math.min(...summary.map((s) => s.ratio)),
    summary,
    points
  })
  say(NAME, `results written to ${path}`)
}

function median (values: readonly number[]): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

if (import.meta.url === `file://${process.argv[1]}`) await runIntakeBenchmark()
