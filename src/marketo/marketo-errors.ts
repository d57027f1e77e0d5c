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
