import type { LoggerOptions } from 'pino'

/**
 * One set of logger options for API, worker and sandbox. Redaction paths are declared once and
 * explicitly (pino's advice: wildcards are slow and easy to get wrong): credentials in request
 * headers, and the callback credentials and person fields should a job ever be logged whole.
 * Code logs ids and counts, never records or emails.
 */
export const REDACTED_PATHS = [
  'req.headers["x-api-key"]',
  'req.headers["x-callback-token"]',
  'req.headers.authorization',
  'req.headers.cookie',
  'token',
  'apiCallBackKey',
  'accessToken',
  'clientSecret',
  'email',
  'data.persons',
  'data.sealedCallbackCredentials'
]

export function loggerOptions (level: string, name: string): LoggerOptions {
  return {
    name,
    level,
    redact: { paths: REDACTED_PATHS, censor: '[Redacted]' }
  }
}
