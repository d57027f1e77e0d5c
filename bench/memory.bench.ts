import { spawn } from 'node:child_process'
import { LeadTimeline } from './lib/lead-timeline.ts'
import { residentMb } from './lib/process-memory.ts'
import { round } from './lib/percentiles.ts'
import { printTable, say, writeResult } from './lib/result-file.ts'
import { stopOnSignal } from './lib/stop-on-signal.ts'
import { BENCH_SERVICE_ENV, PROJECT_ROOT, serviceEntries, startServiceStack } from './lib/service-stack.ts'

/**
 * Idle RSS first: the API and one worker started, then left alone, once through tsx from src/
 * (`npm start`, `npm run worker`) and once compiled (`npm run build`, plain node, as the image runs
 * them); the median of the samples in the second half of the idle window, once start-up is over.
 *
 * Memory: the RSS of the API process and of one worker process while 100,000 new persons go
 * through, in batch-campaign invocations of 100 persons (each with its callback). After warm-up
 * (the first 10 %) the RSS must stay flat: start, peak and end are printed. A fixed number of
 * invocations is kept in flight (closed loop), so the figures measure retention, not a backlog.
 */

const NAME = 'memory'
const TOTAL_PERSONS = Number(process.env.BENCH_MEMORY_PERSONS ?? 100_000)
const BATCH = 100
const IN_FLIGHT = 16
const WARMUP_SHARE = 0.1
const SAMPLE_MS = 1_000
const WORKER_ENV = { WORKER_CONCURRENCY: '16', DYNAMICS_MAX_CONCURRENCY: '24' }
/** "Flat": the RSS at the end exceeds the RSS after warm-up by less than this. */
const FLAT_TOLERANCE_MB = 40
/** The idle window after both processes are up; `BENCH_MEMORY_PERSONS=0` runs only the idle part. */
const IDLE_SECONDS = Number(process.env.BENCH_MEMORY_IDLE_SECONDS ?? 20)

interface IdleRss { readonly run: 'tsx' | 'compiled', readonly apiEntry: string, readonly workerEntry: string, readonly apiMb: number, readonly workerMb: number }

function median (values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN
}

async function idleRss (compiled: boolean): Promise<IdleRss> {
  const stack = await startServiceStack({ workers: 1, compiled })
  const apiSamples: number[] = []
  const workerSamples: number[] = []
  try {
    // A measuring window, not a wait for a condition: both processes are already up (the stack
    // waited for the API's /health/ready; the worker takes no job), and RSS is read each second.
    for (let second = 1; second <= IDLE_SECONDS; second++) {
      await new Promise((resolve) => setTimeout(resolve, 1_000))
      if (second <= IDLE_SECONDS / 2) continue
      apiSamples.push(await residentMb(stack.api?.pid))
      workerSamples.push(await residentMb(stack.workers[0]?.pid))
    }
  } finally {
    await stack.close()
  }
  const entries = serviceEntries(compiled)
  return { run: compiled ? 'compiled' : 'tsx', apiEntry: entries.api, workerEntry: entries.worker, apiMb: median(apiSamples), workerMb: median(workerSamples) }
}

/**
 * `npm run build`, in a process group of its own, so that a signal meanwhile (bench/run.ts passes
 * SIGTERM/SIGINT on) stops npm, its shell and tsc together, as it stops the services.
 */
async function buildDist (): Promise<void> {
  const build = spawn('npm', ['run', '--silent', 'build'], { cwd: PROJECT_ROOT, stdio: ['ignore', 'ignore', 'inherit'], detached: true })
  const forget = stopOnSignal(async () => { if (build.pid !== undefined) try { process.kill(-build.pid, 'SIGTERM') } catch { /* gone */ } })
  try {
    const code = await new Promise<number | null>((resolve) => { build.once('exit', resolve); build.once('error', () => resolve(null)) })
    if (code !== 0) throw new Error(`npm run build failed (exit ${code})`)
  } finally {
    forget()
  }
}

export async function runIdleRssComparison (): Promise<void> {
  say(NAME, `idle RSS, tsx vs compiled: the API and one worker, ${IDLE_SECONDS} s idle (BENCH_MEMORY_IDLE_SECONDS), median of the last half`)
  say(NAME, 'npm run build (dist/)')
  await buildDist()
  const runs = [await idleRss(false), await idleRss(true)]
  printTable('Idle RSS, tsx vs compiled', runs.map((run) => ({ run: run.run, 'api MB': run.apiMb, 'worker MB': run.workerMb, entries: `${run.apiEntry}, ${run.workerEntry}` })))
  const path = await writeResult(`${NAME}-idle`, { settings: { idleSeconds: IDLE_SECONDS, serviceEnv: BENCH_SERVICE_ENV }, runs })
  say(NAME, `results written to ${path}`)
}

interface Sample { readonly persons: number, readonly seconds: number, readonly apiMb: number, readonly workerMb: number }

export async function runMemoryBenchmark (): Promise<void> {
  say(NAME, `${TOTAL_PERSONS} persons (BENCH_MEMORY_PERSONS) in invocations of ${BATCH}, ${IN_FLIGHT} in flight, worker ${JSON.stringify(WORKER_ENV)}, Dataverse without added latency`)
  const stack = await startServiceStack({ install: true, workers: 0 })
  const clearer = setInterval(() => { stack.sandbox.dataverse.store.clear() }, 1_000)
  const timeline = new LeadTimeline(stack.sandbox, stack.installed!)
  const samples: Sample[] = []
  let done = 0
  const started = performance.now()
  let sampler: NodeJS.Timeout | undefined
  try {
    const worker = await stack.startWorker(WORKER_ENV)
    const sample = async () => {
      samples.push({ persons: done, seconds: round((performance.now() - started) / 1000, 1), apiMb: await residentMb(stack.api?.pid), workerMb: await residentMb(worker.pid) })
    }
    await sample()
    sampler = setInterval(() => { void sample() }, SAMPLE_MS)
    const invocations = TOTAL_PERSONS / BATCH
    let next = 0
    const lane = async () => {
      while (next < invocations) {
        next++
        const persons = timeline.createPersons(BATCH)
        // Closed loop: the next invocation of this lane waits for this one's callback.
        const { callback } = await timeline.invoke(persons)
        await callback
        done += BATCH
        timeline.forget(persons)
        if (done % 10_000 === 0) say(NAME, `${done} persons, api ${await residentMb(stack.api?.pid)} MB, worker ${await residentMb(worker.pid)} MB`)
      }
    }
    await Promise.all(Array.from({ length: IN_FLIGHT }, lane))
    clearInterval(sampler)
    await sample()
  } finally {
    clearInterval(sampler)
    clearInterval(clearer)
    timeline.close()
    await stack.close()
  }
  const seconds = (performance.now() - started) / 1000
  const afterWarmup = samples.filter((s) => s.persons >= TOTAL_PERSONS * WARMUP_SHARE)
  const figures = (pick: (s: Sample) => number) => {
    const start = pick(afterWarmup[0] ?? samples[0]!)
    const end = pick(samples[samples.length - 1]!)
    const peak = Math.max(...afterWarmup.map(pick))
    return { startMb: start, peakMb: peak, endMb: end, growthMb: round(end - start, 1), flat: end - start < FLAT_TOLERANCE_MB }
  }
  const api = figures((s) => s.apiMb)
  const worker = figures((s) => s.workerMb)
  printTable(`RSS through ${TOTAL_PERSONS} persons (${round(seconds, 0)} s, ${round(TOTAL_PERSONS / seconds, 0)} persons/s); start = after the first ${WARMUP_SHARE * 100} %`, [
    { process: 'api', 'start MB': api.startMb, 'peak MB': api.peakMb, 'end MB': api.endMb, 'growth MB': api.growthMb, flat: api.flat },
    { process: 'worker', 'start MB': worker.startMb, 'peak MB': worker.peakMb, 'end MB': worker.endMb, 'growth MB': worker.growthMb, flat: worker.flat }
  ])
  const path = await writeResult(NAME, {
    settings: { persons: TOTAL_PERSONS, batch: BATCH, inFlight: IN_FLIGHT, warmupShare: WARMUP_SHARE, workerEnv: WORKER_ENV, serviceEnv: BENCH_SERVICE_ENV, flatToleranceMb: FLAT_TOLERANCE_MB },
    seconds: round(seconds, 1),
    personsPerSecond: round(TOTAL_PERSONS / seconds, 0),
    api,
    worker,
    samples
  })
  say(NAME, `results written to ${path}`)
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await runIdleRssComparison()
  if (TOTAL_PERSONS > 0) await runMemoryBenchmark()
}
