import { restErrors, type MarketoRestError } from './rest-envelope.ts'

/**
 * The instance-wide REST limits (reference §2.3, §2.4): 100 calls in any 20 s (606), 10 calls in
 * flight at once (615), and a daily quota of 50,000 calls (607) that resets at 12:00 AM CST. All
 * configurable so tests reach them in a handful of calls.
 *
 * A refused call is not counted against the window or the quota (inferred: Adobe's error table
 * does not say; counting refusals would keep a polling client locked out for as long as it polls).
 */

export interface RestLimitSettings {
  /** Calls admitted per sliding window; Marketo's is 100. */
  readonly callsPerWindow: number
  /** Marketo's window is 20 s. */
  readonly windowMs: number
  /** Calls in flight at once; Marketo's is 10. */
  readonly maxConcurrent: number
  /** Calls per day; 50,000 for most subscriptions (at least 10,000). */
  readonly dailyQuota: number
}

export const DOCUMENTED_REST_LIMITS: RestLimitSettings = Object.freeze({
  callsPerWindow: 100,
  windowMs: 20_000,
  maxConcurrent: 10,
  dailyQuota: 50_000
})

export interface RestLimitUsage {
  readonly inFlight: number
  readonly callsInWindow: number
  readonly callsToday: number
}

/** The quota resets at midnight US Central Standard Time, UTC−6 [REST][ERR 607]. */
const QUOTA_DAY_OFFSET_MS = -6 * 3600_000
const DAY_MS = 86_400_000

export function quotaDayOf (atMs: number): number {
  return Math.floor((atMs + QUOTA_DAY_OFFSET_MS) / DAY_MS)
}

/** The decision alone, on plain numbers: which limit, if any, refuses the next call. */
export function limitRefusal (settings: RestLimitSettings, usage: RestLimitUsage): MarketoRestError | undefined {
  if (usage.callsToday >= settings.dailyQuota) return restErrors.dailyQuotaReached()
  if (usage.inFlight >= settings.maxConcurrent) return restErrors.concurrencyLimit(settings.maxConcurrent)
  if (usage.callsInWindow >= settings.callsPerWindow) return restErrors.rateLimited(settings.callsPerWindow, settings.windowMs / 1000)
  return undefined
}

export class RestCallLimits {
  #settings: RestLimitSettings
  readonly #now: () => Date
  /** Admission times (ms) of the calls still inside the window, oldest first. */
  readonly #admittedAt: number[] = []
  #inFlight = 0
  #quotaDay = Number.NaN
  #callsToday = 0

  constructor (options: { settings?: Partial<RestLimitSettings>, now: () => Date }) {
    this.#settings = { ...DOCUMENTED_REST_LIMITS, ...options.settings }
    this.#now = options.now
  }

  get settings (): RestLimitSettings {
    return this.#settings
  }

  /** Changes some limits from now on; calls already counted stay counted. */
  configure (settings: Partial<RestLimitSettings>): void {
    this.#settings = { ...this.#settings, ...settings }
  }

  usage (): RestLimitUsage {
    this.#roll(this.#now().getTime())
    return { inFlight: this.#inFlight, callsInWindow: this.#admittedAt.length, callsToday: this.#callsToday }
  }

  /**
   * Admits one call or throws the Marketo error that refuses it. The caller must call the returned
   * `release` once the answer is sent, so the call stops counting as concurrent.
   */
  admit (): () => void {
    const refusal = limitRefusal(this.#settings, this.usage())
    if (refusal !== undefined) throw refusal
    this.#admittedAt.push(this.#now().getTime())
    this.#callsToday++
    this.#inFlight++
    let released = false
    return () => {
      if (released) return
      released = true
      this.#inFlight--
    }
  }

  /** Forgets every counted call (test control); calls in flight stay in flight. */
  resetCounters (): void {
    this.#admittedAt.length = 0
    this.#callsToday = 0
  }

  #roll (nowMs: number): void {
    while (this.#admittedAt.length > 0 && this.#admittedAt[0]! <= nowMs - this.#settings.windowMs) this.#admittedAt.shift()
    const day = quotaDayOf(nowMs)
    if (day !== this.#quotaDay) {
      this.#quotaDay = day
      this.#callsToday = 0
    }
  }
}
