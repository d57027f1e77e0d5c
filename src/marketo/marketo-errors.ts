/** Marketo answered `success: false`; `code` is Marketo's own (a string such as "606", §2.3). */
export class MarketoApiError extends Error {
  constructor (readonly code: string, message: string) {
    super(message)
    this.name = 'MarketoApiError'
  }
}

/**
 * Marketo answered 607, "Daily quota reached": the instance's quota is spent, for every
 * integration, until 12:00 AM CST (reference §2.3). Still a MarketoApiError with code "607";
 * `resetsAt` says when calling again makes sense.
 */
export class MarketoQuotaExhaustedError extends MarketoApiError {
  constructor (message: string, readonly resetsAt: Date) {
    super('607', message)
    this.name = 'MarketoQuotaExhaustedError'
  }
}

/**
 * Our own daily share of the instance's quota (MARKETO_DAILY_CALL_BUDGET) is spent: no call was
 * made. Callers plan around it (poll again after `resetsAt`), they do not retry.
 */
export class MarketoBudgetSpentError extends Error {
  readonly code = 'MARKETO_BUDGET_SPENT'
  constructor (readonly dailyBudget: number, readonly resetsAt: Date) {
    super(`the Marketo daily call budget of ${dailyBudget} is spent until ${resetsAt.toISOString()}`)
    this.name = 'MarketoBudgetSpentError'
  }
}

/** No window or concurrency slot of the shared call budget came free in time: no call was made; worth retrying later. */
export class MarketoBudgetWaitTimeoutError extends Error {
  readonly code = 'MARKETO_BUDGET_WAIT_TIMEOUT'
  constructor (readonly waitedMs: number, readonly limit: 'window' | 'concurrency') {
    super(`no Marketo call slot came free within ${waitedMs} ms (${limit === 'window' ? 'calls per window' : 'calls in flight'} at the limit)`)
    this.name = 'MarketoBudgetWaitTimeoutError'
  }
}

/** The identity endpoint refused the client credentials (HTTP 401, §2.1). */
export class MarketoAuthError extends Error {
  readonly code = 'MARKETO_AUTH_FAILED'
  constructor (message: string) {
    super(message)
    this.name = 'MarketoAuthError'
  }
}

/**
 * Marketo's REST or identity endpoint answered a redirect. Not followed: the request carries the
 * client secret (identity) or a bearer token (REST) that must go to the configured base URL only,
 * and Marketo's REST API does not redirect (reference §2).
 */
export class MarketoRedirectError extends Error {
  readonly code = 'MARKETO_REDIRECT'
  constructor (readonly status: number) {
    super(`Marketo answered a redirect (HTTP ${status}); redirects are not followed`)
    this.name = 'MarketoRedirectError'
  }
}

/** The callback endpoint refused the outcomes for good (4xx): retrying sends the same thing again. */
export class CallbackRejectedError extends Error {
  readonly code = 'CALLBACK_REJECTED'
  constructor (readonly status: number) {
    super(`Marketo refused the callback with HTTP ${status}`)
    this.name = 'CallbackRejectedError'
  }
}

/** The callback did not arrive (5xx, timeout, network, a redirect): worth retrying later. */
export class CallbackUndeliveredError extends Error {
  readonly code = 'CALLBACK_UNDELIVERED'
  constructor (message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'CallbackUndeliveredError'
  }
}
