import { hostname } from 'node:os'
import { randomUUID } from 'node:crypto'
import type { Queue } from 'bullmq'
import type { Redis } from 'ioredis'
import type { Logger } from 'pino'
import type { FlowStepJobData } from './payloads.ts'
import { decodeIntakeEntry, type IntakeEntry, type IntakeKeys } from './flow-step-intake.ts'

/** The job name every flow-step job carries (jobs/sync-person-batch.ts processes it). */
export const FLOW_STEP_JOB_NAME = 'sync-person-batch'

export interface IntakeMoverOptions {
  /** A connection of the mover's own: it blocks on the stream, and the mover closes it. */
  readonly redis: Redis
  readonly queue: Queue<FlowStepJobData>
  readonly keys: IntakeKeys
  readonly logger: Logger
  /**
   * An entry read by a mover that then died stays pending in the group; after this long another
   * mover takes it over. The workers' job lock is the same promise, so they share the setting.
   */
  readonly claimIdleMs: number
  /** Entries per read; they become one `addBulk` (one MULTI). */
  readonly batchSize?: number
  /** How long a read waits for new entries; also the most `close()` waits for one. */
  readonly blockMs?: number
}

type StreamEntry = [id: string, fields: string[]]

/** A consumer that has had no pending entries and done nothing for this long is a dead process's. */
const FORGET_CONSUMER_AFTER_MS = 60 * 60 * 1000

/**
 * A worker's end of the intake (src/queue/flow-step-intake.ts): reads entries in a consumer
 * group, adds them to the `flow-step` queue with the API's job id and priority, then acknowledges
 * and deletes them. Every worker process runs one; the group hands each entry to one of them.
 *
 * Nothing is lost between the two structures: an entry leaves the stream only after `addBulk` has
 * returned, and an entry whose mover died in between is claimed by another one and added again —
 * harmless, since BullMQ does not add a job whose id it already holds. An entry that cannot be a
 * job at all is parked, with its reason, and logged.
 */
export class IntakeMover {
  readonly #options: Required<IntakeMoverOptions>
  readonly #consumer = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`
  #running: Promise<void> | undefined
  #stopping = false
  #wakeFromPause: (() => void) | undefined
  #nextClaimAt = 0
  #nextPruneAt = 0

  constructor (options: IntakeMoverOptions) {
    this.#options = { batchSize: 100, blockMs: 1_000, ...options }
  }

  start (): void {
    this.#running ??= this.#run()
  }

  /** Stops after the batch in hand (at most `blockMs` of waiting), then closes the connection. */
  async close (): Promise<void> {
    this.#stopping = true
    this.#wakeFromPause?.()
    if (this.#running !== undefined) {
      let timer: NodeJS.Timeout | undefined
      const gaveUp = new Promise<false>((resolve) => { timer = setTimeout(() => { resolve(false) }, this.#options.blockMs + 500) })
      const stopped = await Promise.race([this.#running.then(() => true), gaveUp])
      clearTimeout(timer)
      // A read queued while Redis is away never returns by itself: disconnecting rejects it.
      if (!stopped) this.#options.redis.disconnect()
      await this.#running
    }
    await this.#forgetSelf()
    this.#options.redis.disconnect()
  }

  async #run (): Promise<void> {
    const { logger } = this.#options
    let failures = 0
    let groupReady = false
    while (!this.#stopping) {
      try {
        if (!groupReady) groupReady = await this.#ensureGroup()
        if (Date.now() >= this.#nextClaimAt) await this.#claimAbandoned()
        const entries = await this.#readNew()
        if (entries.length > 0) await this.#move(entries)
        failures = 0
      } catch (error) {
        if (this.#stopping) break
        if (error instanceof Error && error.message.startsWith('NOGROUP')) {
          // Redis lost the group (restarted without persistence, or a flush): create it again.
          groupReady = false
          continue
        }
        failures++
        logger.error({ err: error, failures }, 'intake mover: could not move invocations into the flow-step queue; retrying')
        await this.#pause(Math.min(200 * 2 ** failures, 5_000))
      }
    }
  }

  /** Reads from the start of the stream, so entries appended before any worker ever ran are moved. */
  async #ensureGroup (): Promise<true> {
    const { redis, keys } = this.#options
    try {
      await redis.xgroup('CREATE', keys.stream, keys.group, '0', 'MKSTREAM')
    } catch (error) {
      if (!(error instanceof Error && error.message.startsWith('BUSYGROUP'))) throw error
    }
    return true
  }

  async #readNew (): Promise<StreamEntry[]> {
    const { redis, keys, batchSize, blockMs } = this.#options
    const reply = await redis.xreadgroup('GROUP', keys.group, this.#consumer, 'COUNT', batchSize, 'BLOCK', blockMs, 'STREAMS', keys.stream, '>') as Array<[string, StreamEntry[]]> | null
    return reply?.[0]?.[1] ?? []
  }

  /** Takes over entries another mover read but never acknowledged (it crashed or was killed). */
  async #claimAbandoned (): Promise<void> {
    const { redis, keys, batchSize, claimIdleMs } = this.#options
    this.#nextClaimAt = Date.now() + Math.max(claimIdleMs / 2, 500)
    let cursor = '0-0'
    do {
      const [next, entries] = await redis.xautoclaim(keys.stream, keys.group, this.#consumer, claimIdleMs, cursor, 'COUNT', batchSize) as [string, StreamEntry[], string[]?]
      // Entries deleted while pending come back without fields; XAUTOCLAIM already dropped them.
      const live = entries.filter((entry): entry is StreamEntry => Array.isArray(entry?.[1]))
      if (live.length > 0) {
        this.#options.logger.warn({ entries: live.length }, 'intake mover: took over invocations a stopped worker had read but not queued')
        await this.#move(live)
      }
      cursor = next
    } while (cursor !== '0-0' && !this.#stopping)
    if (Date.now() >= this.#nextPruneAt) await this.#pruneDeadConsumers()
  }

  async #move (entries: readonly StreamEntry[]): Promise<void> {
    const { redis, keys, queue, logger } = this.#options
    const jobs: IntakeEntry[] = []
    const parked: Array<{ id: string, fields: string[], problem: string }> = []
    for (const [id, fields] of entries) {
      const decoded = decodeIntakeEntry(fields)
      if ('problem' in decoded) parked.push({ id, fields, problem: decoded.problem })
      else jobs.push(decoded)
    }
    if (jobs.length > 0) {
      await queue.addBulk(jobs.map(({ jobId, priority, data }) => ({ name: FLOW_STEP_JOB_NAME, data, opts: { jobId, priority } })))
    }
    const ids = entries.map(([id]) => id)
    const done = redis.multi()
    for (const entry of parked) done.xadd(keys.parked, '*', 'entryId', entry.id, 'problem', entry.problem, ...entry.fields)
    done.xack(keys.stream, keys.group, ...ids)
    done.xdel(keys.stream, ...ids)
    await done.exec()
    for (const entry of parked) {
      logger.error({ entryId: entry.id, problem: entry.problem, parkedIn: keys.parked }, 'intake mover: an intake entry cannot become a flow-step job; parked for ops')
    }
    logger.debug({ moved: jobs.length, parked: parked.length }, 'intake mover: invocations queued')
  }

  /** Killed workers leave their consumer names in the group; drop those with nothing pending. */
  async #pruneDeadConsumers (): Promise<void> {
    const { redis, keys } = this.#options
    this.#nextPruneAt = Date.now() + 10 * 60 * 1000
    const consumers = await redis.xinfo('CONSUMERS', keys.stream, keys.group) as unknown[][]
    for (const consumer of consumers) {
      const info = new Map<string, unknown>()
      for (let i = 0; i + 1 < consumer.length; i += 2) info.set(String(consumer[i]), consumer[i + 1])
      const name = String(info.get('name'))
      if (name !== this.#consumer && info.get('pending') === 0 && Number(info.get('idle')) > FORGET_CONSUMER_AFTER_MS) {
        await redis.xgroup('DELCONSUMER', keys.stream, keys.group, name)
      }
    }
  }

  /** Leaves the group on a clean stop, unless entries are still pending for it (another mover will claim them). */
  async #forgetSelf (): Promise<void> {
    const { redis, keys } = this.#options
    if (redis.status !== 'ready') return
    try {
      const pending = await redis.xpending(keys.stream, keys.group, '-', '+', 1, this.#consumer) as unknown[]
      if (pending.length === 0) await redis.xgroup('DELCONSUMER', keys.stream, keys.group, this.#consumer)
    } catch {
      // The group may be gone; a consumer left behind is pruned later.
    }
  }

  /** A wait that `close()` cuts short. */
  async #pause (ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms)
      this.#wakeFromPause = () => { clearTimeout(timer); resolve() }
    })
  }
}
