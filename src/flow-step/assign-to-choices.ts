import type { RedisClient } from '../queue/connections.ts'
import type { Logger } from 'pino'
import type { DataverseClient } from '../dynamics/dataverse-client.ts'
import type { PicklistObject } from '../schemas/flow-step.ts'

type Choice = PicklistObject['choices'][number]

/**
 * Dynamics did not produce the user list in time. Marketo waits on `/getPicklist` while an admin
 * looks at the flow step; the Dataverse client's own retries (30 s a request, backoff, honouring
 * 429 Retry-After) could add up to minutes. The read goes on in the background and fills the
 * cache, so the admin's next try is likely answered from it.
 */
export class PicklistTimeoutError extends Error {
  readonly code = 'DYNAMICS_TIMEOUT'
  readonly statusCode = 503
  constructor (timeoutMs: number) {
    super(`Dynamics did not list its users within ${timeoutMs / 1000} s; try again in a minute`)
    this.name = 'PicklistTimeoutError'
  }
}

export interface AssignToChoicesOptions {
  /** How long the cached list is kept (Marketo asks nightly and on its refresh button). */
  readonly ttlSeconds?: number
  /** How long a caller waits for Dynamics when the cache misses. */
  readonly timeoutMs?: number
}

/**
 * Choices for the Assign To parameter: enabled, interactive Dynamics users. Marketo polls picklists
 * nightly and on the refresh button (§1.4) — rarely — but every API process would otherwise ask
 * Dynamics each time, so the list is cached in Redis for all of them and concurrent misses in one
 * process share one request. Marketo shows at most 1000 choices.
 */
export class AssignToChoices {
  #inFlight: Promise<Choice[]> | undefined
  readonly #ttlSeconds: number
  readonly #timeoutMs: number

  constructor (
    private readonly dynamics: DataverseClient,
    private readonly redis: RedisClient,
    private readonly cacheKey: string,
    private readonly logger: Logger,
    { ttlSeconds = 600, timeoutMs = 10_000 }: AssignToChoicesOptions = {}
  ) {
    this.#ttlSeconds = ttlSeconds
    this.#timeoutMs = timeoutMs
  }

  async list (): Promise<Choice[]> {
    const cached = await this.redis.get(this.cacheKey).catch((error: unknown) => {
      this.logger.warn({ err: error }, 'picklist cache unavailable; asking Dynamics')
      return null
    })
    if (cached !== null) {
      const choices = parseCachedChoices(cached)
      if (choices !== undefined) return choices
      // Not what #load writes (a partial write, another version, a hand edit): a miss, and the
      // fresh list overwrites it. The value itself is not logged.
      this.logger.warn({ cacheKey: this.cacheKey }, 'picklist cache holds an unreadable value; asking Dynamics')
    }
    this.#inFlight ??= this.#load().finally(() => { this.#inFlight = undefined })
    return await withDeadline(this.#inFlight, this.#timeoutMs)
  }

  async #load (): Promise<Choice[]> {
    const users = await this.dynamics.retrieveMultiple<{ systemuserid: string; fullname?: string | null }>('systemusers', {
      select: ['systemuserid', 'fullname'],
      // accessmode 0 = Read-Write: people, not application or support users.
      filter: 'isdisabled eq false and accessmode eq 0',
      orderBy: 'fullname asc',
      maxRows: 1000
    })
    const choices = users.map((user) => ({
      displayValue: { en_US: user.fullname ?? user.systemuserid },
      submittedValue: user.systemuserid
    }))
    await this.redis.set(this.cacheKey, JSON.stringify(choices), 'EX', this.#ttlSeconds).catch(() => undefined)
    return choices
  }
}

/** The cached list, or undefined when the value is not JSON of the shape #load writes. */
export function parseCachedChoices (cached: string): Choice[] | undefined {
  let value: unknown
  try {
    value = JSON.parse(cached)
  } catch {
    return undefined
  }
  if (!Array.isArray(value) || value.length > 1000) return undefined
  return value.every(isChoice) ? value : undefined
}

function isChoice (value: unknown): value is Choice {
  if (typeof value !== 'object' || value === null) return false
  const { displayValue, submittedValue } = value as Record<string, unknown>
  return typeof displayValue === 'object' && displayValue !== null &&
    typeof (displayValue as Record<string, unknown>).en_US === 'string' &&
    ['string', 'number', 'boolean'].includes(typeof submittedValue)
}

async function withDeadline<T> (work: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => { reject(new PicklistTimeoutError(timeoutMs)) }, timeoutMs)
  })
  try {
    return await Promise.race([work, deadline])
  } finally {
    clearTimeout(timer)
  }
}

export const SYNC_AS_CHOICES: Choice[] = [
  { displayValue: { en_US: 'Lead' }, submittedValue: 'Lead' },
  { displayValue: { en_US: 'Contact' }, submittedValue: 'Contact' }
]
