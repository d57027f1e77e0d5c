/**
 * Errors the service raises on purpose. Each carries a stable `code` (for logs, activity-log
 * reasons and API clients) and, where it crosses HTTP, the `statusCode` to answer with.
 * Client-specific errors (Dataverse, Marketo, Azure AD) live beside their clients.
 */

export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID'
  constructor (readonly problems: readonly string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`)
    this.name = 'ConfigError'
  }
}

export class HttpError extends Error {
  constructor (readonly statusCode: number, readonly code: string, message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = new.target.name
  }
}

export class UnauthorizedError extends HttpError {
  constructor () {
    super(401, 'UNAUTHORIZED', 'missing or invalid x-api-key header')
  }
}

export class CallbackUrlRefusedError extends HttpError {
  constructor (reason: string) {
    super(400, 'CALLBACK_URL_REFUSED', `callbackUrl refused: ${reason}`)
  }
}

/** Redis (the job store) could not take the work: tell Marketo to retry rather than lose it. */
export class QueueUnavailableError extends HttpError {
  constructor (options?: ErrorOptions) {
    super(503, 'QUEUE_UNAVAILABLE', 'the job store is unavailable; nothing was queued, retry later', options)
  }
}

export class UnknownPicklistError extends HttpError {
  constructor (name: string) {
    super(400, 'UNKNOWN_PICKLIST', `no picklist named "${name}"`)
  }
}

/** Dynamics (or its token authority) cannot answer now: a picklist cannot be built, try later. */
export class DynamicsUnavailableError extends HttpError {
  constructor (options?: ErrorOptions) {
    super(503, 'DYNAMICS_UNAVAILABLE', 'Dynamics cannot be reached right now; try again later', options)
  }
}

/**
 * The admin API's key (ADMIN_API_KEY) was missing or wrong. Its 401 carries a Basic challenge
 * (src/admin/admin-auth.ts), so a browser asks the person for it.
 */
export class AdminUnauthorizedError extends HttpError {
  constructor () {
    super(401, 'ADMIN_UNAUTHORIZED', 'the admin API needs ADMIN_API_KEY: Authorization: Bearer <key>, or Basic with any user name and the key as password')
  }
}

/**
 * A state-changing admin request sent by another site's page (cross-site request forgery): a browser
 * that has the admin key from the Basic prompt attaches it to any site's requests to this origin.
 */
export class AdminCrossSiteRequestError extends HttpError {
  constructor () {
    super(403, 'ADMIN_CROSS_SITE_REQUEST', 'a state-changing admin request must come from the admin pages themselves or from a client that is not a browser page of another site')
  }
}

/** An admin request named a parked change, a direction or a filter that does not exist or cannot be. */
export class AdminNotFoundError extends HttpError {
  constructor (code: string, message: string) {
    super(404, code, message)
  }
}

export class AdminBadRequestError extends HttpError {
  constructor (code: string, message: string) {
    super(400, code, message)
  }
}
