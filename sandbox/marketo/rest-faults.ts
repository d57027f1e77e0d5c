import { MarketoRestError, restErrors } from './rest-envelope.ts'

/**
 * Injected REST failures, so the service's retry and budget logic can be tested: queued
 * request-level errors (606 rate limit by default — node-marketo-rest waits `maxDelay` then backs
 * off, reference §3.4) and a fixed latency added before each REST answer.
 */
export class RestFaults {
  readonly #queued: MarketoRestError[] = []
  #latencyMs = 0

  /** The next `count` REST calls (after authentication) answer 606 "Max rate limit … exceeded". */
  rateLimitNext (count = 1): void {
    for (let i = 0; i < count; i++) this.#queued.push(restErrors.rateLimited())
  }

  /** The next `count` REST calls answer the given Marketo code, e.g. '604', '608', '611', '615'. */
  errorNext (code: string, message: string, count = 1): void {
    for (let i = 0; i < count; i++) this.#queued.push(new MarketoRestError(code, message))
  }

  setLatency (ms: number): void {
    this.#latencyMs = Math.max(0, ms)
  }

  get latencyMs (): number {
    return this.#latencyMs
  }

  /** The error the current call must answer, if one is queued. */
  takeQueuedError (): MarketoRestError | undefined {
    return this.#queued.shift()
  }

  reset (): void {
    this.#queued.length = 0
    this.#latencyMs = 0
  }
}
