import { hostname } from 'node:os'
import { randomUUID } from 'node:crypto'
import type { Queue } from 'bullmq'
import type { RedisClient } from './connections.ts'
import type { Logger } from 'pino'
import type { FlowCallbackJobData, FlowStepJobData } from './payloads.ts'
import { decodeIntakeEntry, fieldPairs, type IntakeEntry, type IntakeKeys } from './flow-step-intake.ts'
import { FLOW_STEP_JOB_NAME } from './names.ts'
import { isTransientRedisError } from './redis-error-kind.ts'
import { parkedInvocationCallback } from './parked-intake-callback.ts'

export interface IntakeMoverOptions {
  /** A connection of the mover's own: it blocks on the stream, and the mover closes it. */
  readonly redis: RedisClient
  readonly queue: Queue<FlowStepJobData>
  /** Where a parked entry's callback goes, so Marketo hears that its accepted invocation failed. */
  readonly callbackQueue: Queue<FlowCallbackJobData>
  readonly keys: IntakeKeys
  readonly logger: Logger
  /**
   * An entry read by a mover that then died stays pending in the group; one pending this long is
   * presumed to be a dead mover's and another takes it over. Workers take over a dead worker's
   * jobs after their lock duration; the same setting serves both.
   */
  readonly claimIdleMs: number
  /** Entries per read; they become one `addBulk`. */
  readonly batchSize?: number
  /**
   * Entry data per `addBulk` (and, as an estimate, per read): a batch stops filling here, so a
   * run of large invocations (the API takes bodies up to 4 MB) does not become one huge Lua call
   * and reply. An entry larger than this still moves, alone.
   */
  readonly maxBatchBytes?: number
  /** Parked entries kept (`XADD … MAXLEN ~`): the oldest go first once there are about this many. */
  readonly maxParked?: number
  /** How long a read waits for new entries; also the most `close()` waits for one. */
  readonly blockMs?: number
}

type StreamEntry = [id: string, fields: string[]]
type DecodedEntry = IntakeEntry & { readonly entryId: string, readonly fields: string[] }
type ParkedEntry = { readonly id: string, readonly fields: string[], readonly problem: string }

/** What a batch weighs: the bytes of its entries' field names and values. */
export function entryBytes (fields: readonly string[]): number {
  let bytes = 0
  for (const field of fields) bytes += Buffer.byteLength(field)
  return bytes
}

/**
 * Splits entries, in order, into batches of at most `maxBytes` of entry data each; an entry
 * larger than that on its own is a batch of one.
 */
export function byteBoundedBatches<T> (entries: readonly T[], sizeOf: (entry: T) => number, maxBytes: number): T[][] {
  const batches: T[][] = []
  let current: T[] = []
  let currentBytes = 0
  for (const entry of entries) {
    const bytes = sizeOf(entry)
    if (current.length > 0 && currentBytes + bytes > maxBytes) {
      batches.push(current)
      current = []
      currentBytes = 0
    }
    current.push(entry)
    currentBytes += bytes
  }
  if (current.length > 0) batches.push(current)
  return batches
}

/** A consumer that has had no pending entries and done nothing for this long is a dead process's. */
const FORGET_CONSUMER_AFTER_MS = 60 * 60 * 1000
/** The API refuses bodies over 4 MB (src/app.ts), and an entry holds less than its body. */
const LARGEST_INTAKE_ENTRY_BYTES = 4 * 1024 * 1024

/**
 * A worker's end of the intake (src/queue/flow-step-intake.ts): reads entries in a consumer
 * group, adds them to the `flow-step` queue with the API's job id and priority, then acknowledges
 * and deletes them. Every worker process runs one; the group hands each entry to one of them.
 *
 * Nothing is lost between the two structures: an entry leaves the stream only after `addBulk` has
 * returned, and an entry whose mover failed or died in between is read again (by the same mover at
 * once, or by another after `claimIdleMs`) and added again. BullMQ does not add a job whose id it
 * still holds, so that is one job, as long as the first one's record exists (see the retention in
 * src/queue/create-queues.ts). An entry that cannot be a job is parked with its reason and logged,
 * and never holds up the entries beside it; Marketo still gets its callback, each person failed.
 *
 * "Cannot be a job" is decided, never guessed: Redis answers that mean "not now" (out of memory
 * under `noeviction`, loading, a failover; src/queue/redis-error-kind.ts) leave the entry where it
 * is, to be moved once Redis takes writes again.
 */
export class IntakeMover {
  readonly #options: Required<IntakeMoverOptions>
  readonly #consumer = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`
  #running: Promise<void> | undefined
  #stopping = false
  #wakeFromPause: (() => void) | undefined
  #nextClaimAt = 0
  #nextPruneAt = 0
  /**
   * The largest entry of the last read: how many entries the next read may take within
   * `maxBatchBytes`. Before any read it is assumed as large as the API lets one be (its 4 MB body
   * limit), so a mover starting on a backlog of large invocations does not pull a hundred at once.
   */
  #largestEntryBytes = LARGEST_INTAKE_ENTRY_BYTES

  constructor (options: IntakeMoverOptions) {
    this.#options = { batchSize: 100, blockMs: 1_000, maxBatchBytes: 8 * 1024 * 1024, maxParked: 10_000, ...options }
  }

  start (): void {
    this.#running ??= this.#run()
  }

  /** Stops after the batch in hand (at most `blockMs` of waiting), then closes the connection. */
  async close (): Promise<void> {
    this.#stopping = true
    this.#wakeFromPause?.()
    if (this.#running !== undefined && !await this.#settlesWithin(this.#running, this.#options.blockMs + 500)) {
      // Redis is away: the read waits in ioredis's offline queue, or the batch in `addBulk` on the
      // queue's connection. Disconnecting fails the read; the batch stays pending for a later mover.
      this.#options.redis.disconnect()
      if (!await this.#settlesWithin(this.#running, 1_000)) this.#options.logger.warn('intake mover: closed with a batch still waiting for Redis; it stays pending for another worker')
    }
    await this.#forgetSelf()
    this.#options.redis.disconnect()
  }

  async #settlesWithin (work: Promise<unknown>, ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<false>((resolve) => { timer = setTimeout(() => { resolve(false) }, ms) })
    try {
      return await Promise.race([work.then(() => true, () => true), timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  async #run (): Promise<void> {
    const { logger } = this.#options
    let failures = 0
    let groupReady = false
    // After a failure this mover's own pending entries (read, not yet queued) are read again at
    // once, rather than waiting `claimIdleMs` for another mover to claim them.
    let retryOwnPending = false
    while (!this.#stopping) {
      try {
        if (!groupReady) groupReady = await this.#ensureGroup()
        if (Date.now() >= this.#nextClaimAt) await this.#claimAbandoned()
        if (retryOwnPending) {
          const pending = await this.#read('0', 0)
          if (pending.length > 0) await this.#move(pending)
          else retryOwnPending = false
          continue
        }
        const entries = await this.#read('>', this.#options.blockMs)
        if (entries.length > 0) await this.#move(entries)
        failures = 0
      } catch (error) {
        if (this.#stopping) break
        retryOwnPending = true
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

  /** `>`: entries no mover has read yet, waiting up to `blockMs`; `0`: this mover's pending ones. */
  async #read (from: '>' | '0', blockMs: number): Promise<StreamEntry[]> {
    const { redis, keys } = this.#options
    const block = from === '>' ? ['BLOCK', blockMs] : []
    // COUNT is the only bound XREADGROUP has: sized from the largest entry seen last, so a read of
    // large invocations stays near `maxBatchBytes`; small ones come back to full batches next read.
    const count = this.#readCount()
    const reply = await redis.xreadgroup('GROUP', keys.group, this.#consumer, 'COUNT', count, ...block as [], 'STREAMS', keys.stream, from) as Array<[string, Array<[string, string[] | null]>]> | null
    const entries = reply?.[0]?.[1] ?? []
    if (entries.length > 0) this.#largestEntryBytes = Math.max(1, ...entries.map(([, fields]) => fields === null ? 0 : entryBytes(fields)))
    // A pending entry deleted meanwhile comes back without fields: nothing to move, only to acknowledge.
    const gone = entries.filter(([, fields]) => fields === null).map(([id]) => id)
    if (gone.length > 0) await redis.xack(keys.stream, keys.group, ...gone)
    return entries.filter((entry): entry is StreamEntry => entry[1] !== null)
  }

  /** How many entries one read may take: `batchSize`, fewer when the entries seen last were large. */
  #readCount (): number {
    const { batchSize, maxBatchBytes } = this.#options
    return Math.max(1, Math.min(batchSize, Math.floor(maxBatchBytes / this.#largestEntryBytes)))
  }

  /** Takes over entries another mover read but never acknowledged (it crashed or was killed). */
  async #claimAbandoned (): Promise<void> {
    const { redis, keys, claimIdleMs } = this.#options
    this.#nextClaimAt = Date.now() + Math.max(claimIdleMs / 2, 500)
    let cursor = '0-0'
    do {
      const [next, entries] = await redis.xautoclaim(keys.stream, keys.group, this.#consumer, claimIdleMs, cursor, 'COUNT', this.#readCount()) as [string, StreamEntry[], string[]?]
      if (entries.length > 0) this.#largestEntryBytes = Math.max(1, ...entries.map((entry) => Array.isArray(entry?.[1]) ? entryBytes(entry[1]) : 0))
      // Redis 7 lists entries deleted while pending apart (third element); before 7 they came back
      // without fields. Either way there is nothing to move.
      const live = entries.filter((entry): entry is StreamEntry => Array.isArray(entry?.[1]))
      if (live.length > 0) {
        this.#options.logger.warn({ entries: live.length }, 'intake mover: took over invocations a stopped worker had read but not queued')
        await this.#move(live)
      }
      cursor = next
    } while (cursor !== '0-0' && !this.#stopping)
    if (Date.now() >= this.#nextPruneAt) await this.#pruneDeadConsumers()
  }

  /** Moves entries in batches bounded by count (the read) and by bytes. */
  async #move (entries: readonly StreamEntry[]): Promise<void> {
    for (const batch of byteBoundedBatches(entries, ([, fields]) => entryBytes(fields), this.#options.maxBatchBytes)) {
      await this.#moveBatch(batch)
    }
  }

  async #moveBatch (entries: readonly StreamEntry[]): Promise<void> {
    const { redis, keys, logger, maxParked } = this.#options
    const jobs: DecodedEntry[] = []
    const parked: ParkedEntry[] = []
    for (const [id, fields] of entries) {
      const decoded = decodeIntakeEntry(fields)
      if ('problem' in decoded) parked.push({ id, fields, problem: decoded.problem })
      else jobs.push({ ...decoded, entryId: id, fields })
    }
    const refused = await this.#addJobs(jobs)
    parked.push(...refused)
    // Each parked invocation's callback is queued, then the entry parked, both confirmed before
    // anything is acknowledged (a failure in a MULTI does not stop the commands after it, so
    // parking and deleting must not share one). A retry after a failure here queues the same
    // callback job id: one callback.
    const callbacks = await this.#queueParkedCallbacks(parked)
    if (parked.length > 0) {
      const parking = redis.pipeline()
      parked.forEach((entry, index) => {
        parking.xadd(keys.parked, 'MAXLEN', '~', maxParked, '*', 'entryId', entry.id, 'problem', entry.problem, 'callback', callbacks[index]!, ...entry.fields)
      })
      throwFirstError(await parking.exec())
    }
    const ids = entries.map(([id]) => id)
    throwFirstError(await redis.multi().xack(keys.stream, keys.group, ...ids).xdel(keys.stream, ...ids).exec())
    parked.forEach((entry, index) => {
      logger.error({ entryId: entry.id, problem: entry.problem, callback: callbacks[index], parkedIn: keys.parked }, 'intake mover: an intake entry cannot become a flow-step job; parked for ops')
    })
    logger.debug({ moved: jobs.length - refused.length, parked: parked.length, bytes: entries.reduce((sum, [, fields]) => sum + entryBytes(fields), 0) }, 'intake mover: invocations queued')
  }

  /**
   * Queues the callback of each parked entry that can still be called back. Returns, per entry,
   * what became of it, for the parked record: `queued`, `unrecoverable` (too broken to call back),
   * or the callback queue's permanent refusal. "Not now" from Redis throws: the batch is retried.
   */
  async #queueParkedCallbacks (parked: readonly ParkedEntry[]): Promise<string[]> {
    const { callbackQueue } = this.#options
    const results: string[] = []
    for (const entry of parked) {
      const callback = parkedInvocationCallback(entry.fields, entry.problem)
      if (callback === null) {
        results.push('unrecoverable')
        continue
      }
      try {
        await callbackQueue.add(callback.name, callback.data, callback.opts)
        results.push('queued')
      } catch (error) {
        if (isTransientRedisError(error)) throw error
        results.push(`refused: ${error instanceof Error ? error.message : String(error)}`)
      }
    }
    return results
  }

  /**
   * One `addBulk` for the batch. BullMQ checks every job before adding any, and Redis may refuse
   * one, so when the batch fails for a reason other than the connection the jobs are added one by
   * one and those refused come back to be parked, instead of blocking the batch for ever.
   */
  async #addJobs (jobs: readonly DecodedEntry[]): Promise<ParkedEntry[]> {
    const { queue } = this.#options
    const asJob = ({ jobId, priority, data }: IntakeEntry) => ({ name: FLOW_STEP_JOB_NAME, data, opts: { jobId, priority } })
    if (jobs.length === 0) return []
    try {
      await queue.addBulk(jobs.map(asJob))
      return []
    } catch (error) {
      if (isTransientRedisError(error)) throw error
    }
    const refused: ParkedEntry[] = []
    for (const job of jobs) {
      try {
        const { name, data, opts } = asJob(job)
        await queue.add(name, data, opts)
      } catch (error) {
        if (isTransientRedisError(error)) throw error
        refused.push({ id: job.entryId, fields: job.fields, problem: `the queue refused it: ${error instanceof Error ? error.message : String(error)}` })
      }
    }
    return refused
  }

  /** Killed workers leave their consumer names in the group; drop those with nothing pending. */
  async #pruneDeadConsumers (): Promise<void> {
    const { redis, keys } = this.#options
    this.#nextPruneAt = Date.now() + 10 * 60 * 1000
    const consumers = await redis.xinfo('CONSUMERS', keys.stream, keys.group) as unknown[][]
    for (const consumer of consumers) {
      const info = fieldPairs(consumer)
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

function throwFirstError (replies: Array<[Error | null, unknown]> | null): void {
  if (replies === null) throw new Error('the transaction was discarded')
  for (const [error] of replies) if (error !== null) throw error
}
