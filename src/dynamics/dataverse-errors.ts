/**
 * Errors from the Dataverse Web API, carrying Dataverse's own `code` (the hex in
 * `{"error":{"code","message"}}`, shared/reference/dataverse-web-api-and-msal.md §6) so callers and
 * Marketo's activity log see what Dynamics said.
 */
export class DataverseError extends Error {
  readonly code: string
  constructor (
    readonly status: number,
    dataverseCode: string,
    message: string,
    options?: ErrorOptions
  ) {
    super(message, options)
    this.name = 'DataverseError'
    this.code = dataverseCode === '' ? `HTTP_${status}` : dataverseCode
  }

  /**
   * Dynamics refused this record itself (validation, conflict): sending it again cannot help, and
   * nothing was written. Not 401/403 (the integration's access, which ops can fix: retry later),
   * nor 404/408/429.
   */
  get isRejection (): boolean {
    return this.status === 400 || this.status === 409 || this.status === 412
  }
}

/**
 * Dynamics did not answer usably in time (network error, timeout, 5xx, throttling beyond the
 * retry budget). For a write the outcome is unknown: the record may or may not exist, so the
 * caller must look it up again before creating anything.
 */
export class DataverseUnavailableError extends Error {
  readonly code = 'DYNAMICS_UNAVAILABLE'
  constructor (message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'DataverseUnavailableError'
  }
}
