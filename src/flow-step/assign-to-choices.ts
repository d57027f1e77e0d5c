import type { RedisClient } from '../queue/connections.ts'
import type { Logger } from 'pino'
import type { DataverseClient } from '../dynamics/dataverse-client.ts'
import type { PicklistObject } from '../schemas/flow-step.ts'

type Choice = PicklistObject['choices'][number]

/**
 * Choices for the Assign To parameter: enabled, interactive Dynamics users. Marketo polls picklists
 * nightly and on the refresh button (§1.4) — rarely — but every API process would otherwise ask
 * Dynamics each time, so the list is cached in Redis for all of them and concurrent misses in one
 * process share one request. Marketo shows at most 1000 choices.
 */
export class AssignToChoices {
  #inFlight: Promise<Choice[]> | undefined

  constructor (
    private readonly dynamics: DataverseClient,
    private readonly redis: RedisClient,
    private readonly cacheKey: string,
    private readonly logger: Logger,
    private readonly ttlSeconds = 600
  ) {}

  async list (): Promise<Choice[]> {
    const cached = await this.redis.get(this.cacheKey).catch((error: unknown) => {
      this.logger.warn({ err: error }, 'picklist cache unavailable; asking Dynamics')
      return null
    })
    if (cached !== null) return JSON.parse(cached) as Choice[]
    this.#inFlight ??= this.#load().finally(() => { this.#inFlight = undefined })
    return await this.#inFlight
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
    await this.redis.set(this.cacheKey, JSON.stringify(choices), 'EX', this.ttlSeconds).catch(() => undefined)
    return choices
  }
}

export const SYNC_AS_CHOICES: Choice[] = [
  { displayValue: { en_US: 'Lead' }, submittedValue: 'Lead' },
  { displayValue: { en_US: 'Contact' }, submittedValue: 'Contact' }
]
