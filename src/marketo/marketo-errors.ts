/** Marketo answered `success: false`; `code` is Marketo's own (a string such as "606", §2.3). */
export class MarketoApiError extends Error {
  constructor (readonly code: string, message: string) {
    super(message)
    this.name = 'MarketoApiError'
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
