import type { LoggerOptions } from 'pino'

/**
 * One set of logger options for API, worker and sandbox. Redaction paths are declared once and
 * explicitly (pino's advice: wildcards are slow and easy to get wrong): credentials in request
 * headers, the callback credentials and person fields should a job ever be logged whole, and the
 * arguments of a Redis command that failed.
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
  'data.sealedCallbackCredentials',
  // ioredis puts the failed command on its errors (`err.command = { name, args }`), and pino's err
  // serializer keeps it: an XADD refused under OOM would print the invocation's persons whole.
  'err.command.args'
]

export function loggerOptions (level: string, name: string): LoggerOptions {
  return {
    name,
    level,
    redact: { paths: REDACTED_PATHS, censor: '[Redacted]' }
  }
}
