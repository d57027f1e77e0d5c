import type { Redis } from 'ioredis'
import type { FlowStepJobData } from './payloads.ts'

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
 *   <prefix>:intake:flow-step          stream of {v, jobId, priority, data}
 *   <prefix>:intake:flow-step:parked   entries no worker could turn into a job, with the reason
 *
 * The stream is durable like any other key (AOF), and an entry leaves it only once its job exists.
 */

export const INTAKE_FORMAT_VERSION = '1'

export interface IntakeKeys {
  readonly stream: string
  readonly parked: string
  /** The consumer group every worker's mover reads in, so each entry is moved by one of them. */
  readonly group: string
}

export function flowStepIntakeKeys (prefix: string): IntakeKeys {
  return { stream: `${prefix}:intake:flow-step`, parked: `${prefix}:intake:flow-step:parked`, group: 'movers' }
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
  readonly redis: Redis
  readonly keys: IntakeKeys
  /** A hung Redis must not hang Marketo's request: past this, the append counts as failed. */
  readonly timeoutMs: number
}

/** The API's end: one `XADD` per accepted invocation. */
export class FlowStepIntake {
  readonly #redis: Redis
  readonly #keys: IntakeKeys
  readonly #timeoutMs: number

  constructor ({ redis, keys, timeoutMs }: FlowStepIntakeOptions) {
    this.#redis = redis
    this.#keys = keys
    this.#timeoutMs = timeoutMs
  }

  /**
   * Resolves once Redis holds the entry. Rejects with {@link IntakeUnavailableError} when it does
   * not confirm within the deadline; the entry may still land just after, which is harmless: the
   * caller answers 503, Marketo re-sends, and both entries carry the same job id.
   */
  async append (entry: IntakeEntry): Promise<void> {
    const added = this.#redis.xadd(this.#keys.stream, '*',
      'v', INTAKE_FORMAT_VERSION, 'jobId', entry.jobId, 'priority', String(entry.priority), 'data', JSON.stringify(entry.data))
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

  /** Entries not yet moved into the queue (for tests and ops). */
  async backlog (): Promise<number> {
    return await this.#redis.xlen(this.#keys.stream)
  }
}

/**
 * Reads one stream entry back. Returns the reason instead of throwing when it cannot be a job,
 * so the mover parks that entry and carries on with the rest.
 */
export function decodeIntakeEntry (fields: readonly string[]): IntakeEntry | { readonly problem: string } {
  const record = new Map<string, string>()
  for (let i = 0; i + 1 < fields.length; i += 2) record.set(fields[i]!, fields[i + 1]!)
  if (record.get('v') !== INTAKE_FORMAT_VERSION) return { problem: `unknown intake format version ${JSON.stringify(record.get('v') ?? null)}` }
  const jobId = record.get('jobId')
  const priority = Number(record.get('priority'))
  if (jobId === undefined || jobId === '') return { problem: 'no jobId' }
  if (!Number.isInteger(priority) || priority < 0) return { problem: `priority ${JSON.stringify(record.get('priority') ?? null)} is not a non-negative integer` }
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
