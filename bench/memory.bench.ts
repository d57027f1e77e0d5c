import { LeadTimeline } from './lib/lead-timeline.ts'
import { residentMb } from './lib/process-memory.ts'
import { round } from './lib/percentiles.ts'
import { printTable, say, writeResult } from './lib/result-file.ts'
import { BENCH_SERVICE_ENV, startServiceStack } from './lib/service-stack.ts'

/**
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

if (import.meta.url === `file://${process.argv[1]}`) await runMemoryBenchmark()
