import { randomBytes } from 'node:crypto'
import type { ServerResponse } from 'node:http'
import { sendJson } from './http-io.ts'

/**
 * The Marketo REST response envelope (reference §2.2): `{requestId, success, result?, errors?,
 * warnings?, moreResult?, nextPageToken?}`. Request-level failures are HTTP 200 with
 * `success: false` and error codes as *strings* — node-marketo-rest matches `'602'`, never `602`
 * (reference §3.4).
 */

/** Real REST responses carry the charset parameter [GRP]; restler parses JSON only for JSON types (§3.4). */
export const REST_CONTENT_TYPE = 'application/json;charset=UTF-8'

export interface RestErrorItem {
  readonly code: string
  readonly message: string
}

export interface RestEnvelope {
  readonly requestId: string
  readonly success: boolean
  readonly result?: readonly unknown[]
  readonly errors?: readonly RestErrorItem[]
  readonly warnings?: readonly string[]
  readonly moreResult?: boolean
  readonly nextPageToken?: string
}

/** What a REST handler returns on success; the router wraps it in an envelope. */
export interface RestSuccess {
  readonly result?: readonly unknown[]
  readonly warnings?: readonly string[]
  readonly moreResult?: boolean
  readonly nextPageToken?: string
}

/**
 * A request-level Marketo error (6xx/7xx/1xxx) thrown by a handler; the router turns it into
 * `success: false` with this code. `httpStatus` stays 200 except for the few HTTP-level errors.
 */
export class MarketoRestError extends Error {
  constructor (readonly code: string, message: string, readonly httpStatus = 200) {
    super(message)
    this.name = 'MarketoRestError'
  }
}

/** Messages as Marketo words them (reference §2.3; 600 is node-marketo-rest's TOKEN_EMPTY, §4 q6). */
export const restErrors = {
  tokenMissing: () => new MarketoRestError('600', 'Access token not specified'),
  tokenInvalid: () => new MarketoRestError('601', 'Access token invalid'),
  tokenExpired: () => new MarketoRestError('602', 'Access token expired'),
  methodNotSupported: (method: string) => new MarketoRestError('605', `Request method '${method}' not supported`),
  rateLimited: (limit = 100, seconds = 20) => new MarketoRestError('606', `Max rate limit '${limit}' exceeded with in '${seconds}' secs`),
  dailyQuotaReached: () => new MarketoRestError('607', 'Daily quota reached'),
  invalidJson: () => new MarketoRestError('609', 'Invalid JSON'),
  notFound: () => new MarketoRestError('610', 'Requested resource not found', 404),
  invalidContentType: () => new MarketoRestError('612', 'Invalid Content Type'),
  invalidMultipart: () => new MarketoRestError('613', 'Invalid Multipart Request'),
  concurrencyLimit: (limit = 10) => new MarketoRestError('615', `Concurrent access limit '${limit}' reached`),
  blank: (parameter: string) => new MarketoRestError('701', `${parameter} cannot be blank`),
  invalidDate: (value: string) => new MarketoRestError('704', `Invalid date format: ${value}`),
  invalidData: (message: string) => new MarketoRestError('1003', message),
  fieldNotFound: (field: string) => new MarketoRestError('1006', `Field '${field}' not found`),
  objectNotFound: (what: string) => new MarketoRestError('1013', `${what} not found`),
  tooManyImports: () => new MarketoRestError('1016', 'Too many imports'),
  objectExists: (what: string) => new MarketoRestError('1017', `${what} already exists`),
  activityTypeLimit: () => new MarketoRestError('1027', 'Max Activity Type Limit Reached'),
  fieldLimit: () => new MarketoRestError('1028', 'Max field limit reached')
} as const

/** `<hex>#<epoch ms in hex>`, the shape seen in recorded traffic (reference §2.2, inferred from [GRP]). */
export function newRequestId (now: Date): string {
  return `${randomBytes(2).toString('hex')}#${now.getTime().toString(16)}`
}

export function sendRestSuccess (res: ServerResponse, requestId: string, success: RestSuccess): void {
  const envelope: RestEnvelope = { requestId, success: true, ...success }
  sendJson(res, 200, envelope, REST_CONTENT_TYPE)
}

export function sendRestError (res: ServerResponse, requestId: string, error: MarketoRestError): void {
  const envelope: RestEnvelope = {
    requestId,
    success: false,
    errors: [{ code: error.code, message: error.message }]
  }
  sendJson(res, error.httpStatus, envelope, REST_CONTENT_TYPE)
}
