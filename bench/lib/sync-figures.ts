/**
 * The background-sync benchmark's judgements (issue 12 §14), pure so they are unit-tested
 * (test/bench/sync-figures.test.ts): extrapolating an idle window to a day, the poll interval a
 * daily budget allows, whether idle cost depends on the linked count, and what Marketo's limits
 * allow a first sync.
 */

const DAY_MS = 24 * 3600 * 1000

/** Calls counted over `windowMs`, as a rate per day. */
export function callsPerDay (calls: number, windowMs: number): number {
  if (windowMs <= 0) throw new RangeError('the window must be longer than 0 ms')
  return Math.round(calls * DAY_MS / windowMs)
}

/**
 * The shortest idle poll interval a daily budget allows when each idle poll costs `callsPerPoll`
 * calls and nothing else spends the budget: a day divided by the polls it can pay for.
 */
export function idlePollIntervalForBudgetMs (dailyBudget: number, callsPerPoll = 1): number {
  if (dailyBudget <= 0) throw new RangeError('the budget must be positive')
  return Math.ceil(DAY_MS / (dailyBudget / callsPerPoll))
}

/**
 * Idle cost independent of the linked count: the larger population's daily calls are within
 * `tolerance` (a share) of the smaller one's, plus one poll's worth of jitter (a window boundary
 * can cut one poll either way).
 */
export function idleCostIndependent (small: { callsPerDay: number, calls: number }, large: { callsPerDay: number, calls: number }, tolerance = 0.1): boolean {
  const perCall = small.calls === 0 ? 0 : small.callsPerDay / small.calls
  return Math.abs(large.callsPerDay - small.callsPerDay) <= small.callsPerDay * tolerance + perCall
}

export interface MarketoLimits {
  /** Records per createOrUpdate call (Marketo's maximum: 300). */
  readonly recordsPerCall: number
  /** Calls allowed per window, and the window. */
  readonly callsPerWindow: number
  readonly windowMs: number
  readonly dailyCalls: number
}

/** What Marketo's limits allow a first sync: records per second and per day if every call carried a full batch. */
export function firstSyncBound (limits: MarketoLimits, callsPerBatch = 1): { recordsPerSecond: number, recordsPerDay: number } {
  const callsPerSecond = limits.callsPerWindow / (limits.windowMs / 1000)
  return {
    recordsPerSecond: Math.round(callsPerSecond / callsPerBatch * limits.recordsPerCall),
    recordsPerDay: Math.floor(limits.dailyCalls / callsPerBatch) * limits.recordsPerCall
  }
}
