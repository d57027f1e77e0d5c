import type { RedisClient } from './connections.ts'
import type { FlowStepJobData } from './payloads.ts'
import { intakeStreamKeys } from './redis-keys.ts'

/**
 * The flow step's intake: where the API leaves an accepted invocation for the workers.
 *
 * Accepting must be cheap, because Marketo waits for the 201 and a campaign can fire thousands of
 * invocations a second. A BullMQ add is a Lua script touching eight keys, built by a client that
 * spends a quarter of the API's CPU doing so; an `XADD` onto one stream is a single command. So the
 * API appends, and every worker process runs an {@link IntakeMover} that turns entries into
 * `flow-step` jobs in batches, with the same job ids (so a re-sent invocation is still queued once)
 * and priorities.
 *
 *   <prefix>:{intake:flow-step}          stream of {v, jobId, priority, data}
 *   <prefix>:{intake:flow-step}:parked   entries no worker could turn into a job, with the reason
 *
 * Both carry one hash tag (src/queue/redis-keys.ts): on a Redis Cluster they live in one slot, so a
 * mover's batch talks to one node and a transaction over both stays possible.
 *
 * The stream is durable like any other key (AOF), and an entry leaves it only once its job exists.
 */

export const INTAKE_FORMAT_VERSION = '1'
/** BullMQ's highest priority number (2^21 - 1); it refuses a job with a larger one. */
const MAX_PRIORITY = 2 ** 21 - 1

export interface IntakeKeys {
  readonly stream: string
  readonly parked: string
  /** The consumer group every worker's mover reads in, so each entry is moved by one of them. */
  readonly group: string
}

export function flowStepIntakeKeys (prefix: string): IntakeKeys {
  return { ...intakeStreamKeys(prefix), group: 'movers' }
}

/** What the mover needs to add the job, exactly as the API decided it. */
export interface IntakeEntry {
  readonly jobId: string
  readonly priority: number
  readonly data: FlowStepJobData
}

export class IntakeUnavailableError extends Error {
  readonly code = 'INTAKE_UNAVAILABLE'
  constructor (message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'IntakeUnavailableError'
  }
}

export interface FlowStepIntakeOptions {
  /** The API's fail-fast connection: a command fails at once while Redis is away. */
  readonly redis: RedisClient
  readonly keys: IntakeKeys
  /** A hung Redis must not hang Marketo's request: past this, the append counts as failed. */
  readonly timeoutMs: number
  /** Appends sent and not yet answered by Redis, past which new ones are refused at once. */
  readonly maxUnanswered?: number
  /** The same bound in characters of entry data, so large invocations cannot pile up either. */
  readonly maxUnansweredChars?: number
}

type PendingAppend = { readonly args: Array<string | number>, resolve (): void, reject (error: unknown): void }

/** Past this much entry data held for the turn's pipeline, it is sent at once. */
const MAX_HELD_CHARS = 8 * 1024
/**
 * At 6,000 invocations a second answered in under 6 ms (the intake benchmark) some 40 appends are
 * in flight; 500 is far above any healthy moment and, at 100-person invocations (~20 KB), holds
 * about 10 MB. 16 M characters bounds the rare 1,000-person invocations the same way.
 */
const DEFAULT_MAX_UNANSWERED = 500
const DEFAULT_MAX_UNANSWERED_CHARS = 16 * 1024 * 1024

/**
 * The API's end: one `XADD` per accepted invocation.
 *
 * Under load many small invocations are parsed in one turn of the event loop; their `XADD`s are
 * sent together, as one pipeline in one socket write, at the end of that turn instead of one
 * system call each (a fifth more 1-person invocations a second on 2 cores). Large invocations are
 * sent at once: holding 100-person entries back for the rest of the turn cost a tenth of their
 * throughput. (ioredis's own auto-pipelining keeps one pipeline in flight at a time, and large
 * invocations queued behind each other: p99 at 1,000 100-person invocations a second went from 4 ms
 * to 50 ms. Here every pipeline leaves at once.)
 */
export class FlowStepIntake {
  readonly #redis: RedisClient
  readonly #keys: IntakeKeys
  readonly #timeoutMs: number
  readonly #maxUnanswered: number
  readonly #maxUnansweredChars: number
  #batch: PendingAppend[] = []
  #heldChars = 0
  readonly #unanswered = new UnansweredAppends()

  constructor ({ redis, keys, timeoutMs, maxUnanswered = DEFAULT_MAX_UNANSWERED, maxUnansweredChars = DEFAULT_MAX_UNANSWERED_CHARS }: FlowStepIntakeOptions) {
    this.#redis = redis
    this.#keys = keys
    this.#timeoutMs = timeoutMs
    this.#maxUnanswered = maxUnanswered
    this.#maxUnansweredChars = maxUnansweredChars
  }

  /** Appends sent to Redis and not yet answered (an upper bound), for tests and ops. */
  get unanswered (): { readonly count: number, readonly chars: number } {
    this.#unanswered.forgetAnswered(commandsAwaitingAnswer(this.#redis))
    return { count: this.#unanswered.count, chars: this.#unanswered.chars }
  }

  /**
   * Resolves once Redis holds the entry. Rejects with {@link IntakeUnavailableError} when it does
   * not confirm within the deadline; the entry may still land just after: the caller answers 503,
   * Marketo re-sends, and both entries carry the same job id, so they make one job.
   */
  async append (entry: IntakeEntry): Promise<void> {
    const data = JSON.stringify(entry.data)
    // While Redis is connected but not answering, every append would wait in the client's queue
    // (holding its entry) for as long as that lasts, and a busy campaign adds thousands a second:
    // past the bound, refuse at once (503, Marketo re-sends) instead of queueing without end.
    this.#unanswered.forgetAnswered(commandsAwaitingAnswer(this.#redis))
    if (this.#unanswered.count + this.#batch.length >= this.#maxUnanswered ||
        this.#unanswered.chars + this.#heldChars + data.length > this.#maxUnansweredChars) {
      throw new IntakeUnavailableError(`Redis has not answered ${this.#unanswered.count + this.#batch.length} appends yet; refused until it does`)
    }
    const args = [this.#keys.stream, '*', 'v', INTAKE_FORMAT_VERSION, 'jobId', entry.jobId, 'priority', entry.priority, 'data', data]
    const added = new Promise<void>((resolve, reject) => {
      if (this.#batch.push({ args, resolve, reject }) === 1) setImmediate(() => { this.#send() })
      this.#heldChars += data.length
      if (this.#heldChars >= MAX_HELD_CHARS) this.#send()
    })
    let timer: NodeJS.Timeout | undefined
    const deadline = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => { reject(new IntakeUnavailableError(`Redis did not confirm the invocation within ${this.#timeoutMs} ms`)) }, this.#timeoutMs)
    })
    try {
      await Promise.race([added, deadline])
    } catch (error) {
      if (error instanceof IntakeUnavailableError) throw error
      throw new IntakeUnavailableError('Redis refused the invocation', { cause: error })
    } finally {
      clearTimeout(timer)
    }
  }

  #send (): void {
    const batch = this.#batch
    this.#batch = []
    this.#heldChars = 0
    if (batch.length === 0) return
    for (const { args } of batch) this.#unanswered.sent((args[args.length - 1] as string).length)
    if (batch.length === 1) {
      const [only] = batch as [PendingAppend]
      this.#redis.call('XADD', only.args).then(() => { only.resolve() }, only.reject)
      return
    }
    const pipeline = this.#redis.pipeline()
    for (const { args } of batch) void pipeline.call('XADD', args)
    pipeline.exec().then((replies) => {
      batch.forEach((append, index) => {
        const error = replies?.[index]?.[0]
        if (replies === null || error !== null && error !== undefined) append.reject(error ?? new Error('the pipeline was discarded'))
        else append.resolve()
      })
    }, (error: unknown) => { for (const append of batch) append.reject(error) })
  }

  /** Entries not yet moved into the queue (for tests and ops). */
  async backlog (): Promise<number> {
    return await this.#redis.xlen(this.#keys.stream)
  }
}

/**
 * Commands a connection has sent and not yet had answered. A Cluster sends through one connection
 * per node; the intake stream lives on one of them, so the sum over-counts a little, never under.
 */
function commandsAwaitingAnswer (redis: RedisClient): number {
  if (!('nodes' in redis)) return redis.commandQueue.length
  let queued = 0
  for (const node of redis.nodes()) queued += node.commandQueue.length
  return queued
}

/**
 * The sizes of appends sent and not yet answered, oldest first. Redis answers a connection's
 * commands in order, and ioredis keeps each in its `commandQueue` until the answer comes — also
 * after `commandTimeout` has failed the caller. So when that queue holds n commands, at most our
 * n most recent appends are among them: older ones were answered. (Other commands share the queue,
 * so this over-counts a little; never under.) A command timeout is not an answer: counted this
 * way, appends stuck behind a paused Redis stay counted until Redis really answers them.
 */
export class UnansweredAppends {
  #sizes: number[] = []
  #head = 0
  #chars = 0

  get count (): number {
    return this.#sizes.length - this.#head
  }

  get chars (): number {
    return this.#chars
  }

  sent (chars: number): void {
    this.#sizes.push(chars)
    this.#chars += chars
  }

  /** `queued`: how many commands the connection still waits an answer for. */
  forgetAnswered (queued: number): void {
    while (this.count > queued) this.#chars -= this.#sizes[this.#head++]!
    if (this.#head > 1024 && this.#head * 2 > this.#sizes.length) {
      this.#sizes = this.#sizes.slice(this.#head)
      this.#head = 0
    }
  }
}

/** A Redis reply of alternating names and values (a stream entry's fields, an XINFO row) as a map. */
export function fieldPairs<V> (flat: readonly V[]): Map<string, V> {
  const pairs = new Map<string, V>()
  for (let i = 0; i + 1 < flat.length; i += 2) pairs.set(String(flat[i]), flat[i + 1]!)
  return pairs
}

/**
 * Reads one stream entry back. Returns the reason instead of throwing when it cannot be a job,
 * so the mover parks that entry and carries on with the rest.
 */
export function decodeIntakeEntry (fields: readonly string[]): IntakeEntry | { readonly problem: string } {
  const record = fieldPairs(fields)
  if (record.get('v') !== INTAKE_FORMAT_VERSION) return { problem: `unknown intake format version ${JSON.stringify(record.get('v') ?? null)}` }
  const jobId = record.get('jobId')
  const priority = Number(record.get('priority'))
  if (jobId === undefined || jobId === '') return { problem: 'no jobId' }
  if (!Number.isInteger(priority) || priority < 0 || priority > MAX_PRIORITY) return { problem: `priority ${JSON.stringify(record.get('priority') ?? null)} is not an integer from 0 to ${MAX_PRIORITY}` }
  let data: unknown
  try {
    data = JSON.parse(record.get('data') ?? '')
  } catch {
    return { problem: 'data is not JSON' }
  }
  if (!isFlowStepJobData(data)) return { problem: 'data is not a flow-step invocation' }
  return { jobId, priority, data }
}

function isFlowStepJobData (value: unknown): value is FlowStepJobData {
  if (typeof value !== 'object' || value === null) return false
  const data = value as Record<string, unknown>
  return typeof data.invocationId === 'string' && typeof data.callbackUrl === 'string' &&
    typeof data.sealedCallbackCredentials === 'string' && Array.isArray(data.persons)
}
