import { DataverseError, injectedFailure, requestLimitExceeded } from './dataverse-error.ts'

/**
 * Fault injection for the Dataverse emulator: added latency, service-protection throttling
 * (429 + Retry-After + `0x80072322`, reference doc §5) and plain server failures. Counts are
 * consumed one per Web API request, throttling first.
 *
 * `delayResponsesAfterCommit` is the ambiguous failure a client cannot rule out: the write is
 * executed (the row exists) and only the answer is late — beyond a client's timeout, the client
 * cannot know whether its create happened. Its count is consumed by writes (POST, PATCH, DELETE)
 * that get past the throttle and failure faults; one Dataverse refuses (validation) still answers at once.
 */

export interface DataverseFaultState {
  readonly latencyMs: number
  readonly throttle: { readonly count: number, readonly retryAfterSeconds: number }
  readonly fail: { readonly count: number, readonly status: number }
  readonly delayAfterCommit: { readonly count: number, readonly ms: number }
}

export interface DataverseFaults {
  setLatency (ms: number): void
  throttleNext (count: number, retryAfterSeconds: number): void
  failNext (count: number, status?: number): void
  /** The next `count` writes are executed, then answered only after `ms` milliseconds. */
  delayResponsesAfterCommit (count: number, ms: number): void
  clear (): void
  state (): DataverseFaultState
}

export class FaultSettingsError extends Error {
  readonly code = 'INVALID_FAULT_SETTINGS'
  constructor (message: string) {
    super(message)
    this.name = 'FaultSettingsError'
  }
}

export class FaultInjector implements DataverseFaults {
  #latencyMs: number
  #throttle = { count: 0, retryAfterSeconds: 0 }
  #fail = { count: 0, status: 503 }
  #delayAfterCommit = { count: 0, ms: 0 }

  constructor (latencyMs = 0) {
    this.#latencyMs = checkedCount(latencyMs, 'latencyMs')
  }

  setLatency (ms: number): void {
    this.#latencyMs = checkedCount(ms, 'latencyMs')
  }

  throttleNext (count: number, retryAfterSeconds: number): void {
    this.#throttle = { count: checkedCount(count, 'count'), retryAfterSeconds: checkedCount(retryAfterSeconds, 'retryAfterSeconds') }
  }

  failNext (count: number, status = 503): void {
    if (!Number.isInteger(status) || status < 400 || status > 599) throw new FaultSettingsError('status must be an HTTP error status (400-599)')
    this.#fail = { count: checkedCount(count, 'count'), status }
  }

  delayResponsesAfterCommit (count: number, ms: number): void {
    this.#delayAfterCommit = { count: checkedCount(count, 'count'), ms: checkedCount(ms, 'ms') }
  }

  clear (): void {
    this.#latencyMs = 0
    this.#throttle = { count: 0, retryAfterSeconds: 0 }
    this.#fail = { count: 0, status: 503 }
    this.#delayAfterCommit = { count: 0, ms: 0 }
  }

  state (): DataverseFaultState {
    return { latencyMs: this.#latencyMs, throttle: { ...this.#throttle }, fail: { ...this.#fail }, delayAfterCommit: { ...this.#delayAfterCommit } }
  }

  get latencyMs (): number {
    return this.#latencyMs
  }

  /** The fault the next request must suffer, if any; consumes one count. */
  takeFault (): DataverseError | undefined {
    if (this.#throttle.count > 0) {
      this.#throttle.count -= 1
      return requestLimitExceeded(this.#throttle.retryAfterSeconds)
    }
    if (this.#fail.count > 0) {
      this.#fail.count -= 1
      return injectedFailure(this.#fail.status)
    }
    return undefined
  }

  /** How long to hold the answer to this write once executed (0: answer at once); consumes one count. */
  takeDelayAfterCommit (): number {
    if (this.#delayAfterCommit.count === 0) return 0
    this.#delayAfterCommit.count -= 1
    return this.#delayAfterCommit.ms
  }

  /** Applies the `/_emulator/faults` PUT body. */
  apply (settings: unknown): void {
    if (settings === null || typeof settings !== 'object' || Array.isArray(settings)) {
      throw new FaultSettingsError('expected a JSON object {latencyMs?, throttle?: {count, retryAfterSeconds}, fail?: {count, status}, delayAfterCommit?: {count, ms}}')
    }
    const { latencyMs, throttle, fail, delayAfterCommit } = settings as Record<string, unknown>
    if (latencyMs !== undefined) this.setLatency(latencyMs as number)
    if (throttle !== undefined) {
      const { count, retryAfterSeconds } = (throttle ?? {}) as Record<string, unknown>
      this.throttleNext(count as number, retryAfterSeconds as number)
    }
    if (fail !== undefined) {
      const { count, status } = (fail ?? {}) as Record<string, unknown>
      this.failNext(count as number, status === undefined ? 503 : status as number)
    }
    if (delayAfterCommit !== undefined) {
      const { count, ms } = (delayAfterCommit ?? {}) as Record<string, unknown>
      this.delayResponsesAfterCommit(count as number, ms as number)
    }
  }
}

function checkedCount (value: number, name: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new FaultSettingsError(`${name} must be a non-negative integer`)
  }
  return value
}
