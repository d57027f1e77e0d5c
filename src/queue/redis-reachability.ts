import type { RedisClient } from './connections.ts'
import { isRedisConnectionError } from './redis-error-kind.ts'
import type { Logger } from 'pino'

/**
 * Whether this process reaches Redis, said once per outage. Every connection (and BullMQ's own
 * duplicates, through their Queue/Worker `error` events) reports each failed reconnect; logged
 * one by one that is dozens of identical lines a second, and the one fact an operator needs —
 * Redis is not there, at this address — drowns. The connections keep retrying regardless: a
 * Redis restart is ridden out, and its end is logged once too.
 */

/** `host:port` of a Redis URL, never its user or password. */
export function redisAddress (url: string): string {
  const { hostname, port } = new URL(url)
  return `${hostname}:${port === '' ? '6379' : port}`
}


export class RedisReachability {
  readonly #address: string
  readonly #logger: Logger
  #unreachableSince: number | undefined

  constructor ({ url, logger }: { url: string, logger: Logger }) {
    this.#address = redisAddress(url)
    this.#logger = logger
  }

  get reachable (): boolean {
    return this.#unreachableSince === undefined
  }

  /** Every error and every recovery of `connection` goes through here (this is its error listener). */
  watch<C extends RedisClient> (connection: C): C {
    // A Cluster keeps its connection options under `redisOptions`, a single Redis at the top.
    const connectionName = 'redisOptions' in connection.options ? connection.options.redisOptions?.connectionName : (connection.options as { connectionName?: string }).connectionName
    connection.on('error', (error: Error) => {
      if (!this.accountFor(error)) this.#logger.error({ err: error, connection: connectionName }, 'redis connection error')
    })
    connection.on('ready', () => { this.#recovered() })
    return connection
  }

  /**
   * True when `error` is a lost connection, which this has logged (once per outage); false for
   * anything else, which the caller logs as it would.
   */
  accountFor (error: unknown): boolean {
    if (!isRedisConnectionError(error)) return false
    if (this.#unreachableSince === undefined) {
      this.#unreachableSince = Date.now()
      const code = (error as NodeJS.ErrnoException).code ?? 'closed'
      this.#logger.error({ redis: this.#address, code }, `redis cannot be reached at ${this.#address} (${code}); retrying until it is back`)
    }
    return true
  }

  #recovered (): void {
    if (this.#unreachableSince === undefined) return
    const unreachableForMs = Date.now() - this.#unreachableSince
    this.#unreachableSince = undefined
    this.#logger.info({ redis: this.#address, unreachableForMs }, `redis reachable again at ${this.#address}`)
  }
}
