import { randomUUID } from 'node:crypto'

/**
 * Azure AD's error envelope for the v2.0 token endpoint (reference doc §8.3; entra-docs
 * `v2-oauth2-client-creds-grant-flow.md`). MSAL turns any body with `error` into a `ServerError`
 * whose `errorCode` is `error` and whose `status` is the HTTP status.
 */
export interface AadErrorBody {
  readonly error: string
  readonly error_description: string
  readonly error_codes: readonly number[]
  readonly timestamp: string
  readonly trace_id: string
  readonly correlation_id: string
}

export interface AadErrorReply {
  readonly status: number
  readonly body: AadErrorBody
}

/** `2024-01-01 00:00:00Z`, the format AAD uses in `timestamp` and in the description trailer. */
function aadTimestamp (date: Date): string {
  return date.toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, 'Z')
}

export function aadError (
  status: number,
  error: string,
  aadsts: number,
  message: string,
  correlationId: string = randomUUID()
): AadErrorReply {
  const traceId = randomUUID()
  const timestamp = aadTimestamp(new Date())
  return {
    status,
    body: {
      error,
      // AAD appends the ids and the time to every description.
      error_description: `AADSTS${aadsts}: ${message} Trace ID: ${traceId} Correlation ID: ${correlationId} Timestamp: ${timestamp}`,
      error_codes: [aadsts],
      timestamp,
      trace_id: traceId,
      correlation_id: correlationId
    }
  }
}
