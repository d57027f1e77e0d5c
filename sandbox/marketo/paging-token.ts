import { restErrors } from './rest-envelope.ts'

/**
 * Paging tokens are opaque to clients (reference §2.6 "Paging token", §2.5 `nextPageToken`).
 * Ours are URL-safe base64 of a small JSON cursor:
 *  - activity tokens: `{s: since epoch ms, a: last activity id returned}` — date-based like
 *    Marketo's, with an id cursor so activities in the same second page exactly once;
 *  - lead tokens: `{o: offset}` — position-based, like Get Leads' (§2.5).
 */

export interface ActivityCursor {
  readonly sinceMs: number
  readonly afterActivityId: number
}

export function encodeActivityCursor (cursor: ActivityCursor): string {
  return Buffer.from(JSON.stringify({ s: cursor.sinceMs, a: cursor.afterActivityId })).toString('base64url')
}

export function decodeActivityCursor (token: string): ActivityCursor {
  const decoded = decodeToken(token)
  if (typeof decoded.s !== 'number' || typeof decoded.a !== 'number') throw restErrors.invalidData('Invalid nextPageToken')
  return { sinceMs: decoded.s, afterActivityId: decoded.a }
}

export function encodeLeadOffset (offset: number): string {
  return Buffer.from(JSON.stringify({ o: offset })).toString('base64url')
}

export function decodeLeadOffset (token: string): number {
  const decoded = decodeToken(token)
  if (typeof decoded.o !== 'number' || !Number.isInteger(decoded.o) || decoded.o < 0) throw restErrors.invalidData('Invalid nextPageToken')
  return decoded.o
}

function decodeToken (token: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'))
    if (typeof value === 'object' && value !== null) return value as Record<string, unknown>
  } catch {
    // fall through to the Marketo-shaped error
  }
  throw restErrors.invalidData('Invalid nextPageToken')
}
