import { hash, timingSafeEqual } from 'node:crypto'
import type { FastifyError, onRequestAsyncHookHandler } from 'fastify'
import { replyWithError } from '../http/error-handler.ts'
import { AdminCrossSiteRequestError, AdminUnauthorizedError } from '../errors.ts'

/**
 * Who may use the admin surface (issue 13 §4): the holder of ADMIN_API_KEY, as
 * - `Authorization: Bearer <key>` (RFC 6750 §2.1), for API clients and scripts, or
 * - `Authorization: Basic base64(<any user>:<key>)` (RFC 7617), so a person needs only the browser's
 *   own prompt: a refusal answers `WWW-Authenticate: Basic realm=…, charset="UTF-8"`, which makes the
 *   browser ask, and it then sends the pair with every request of the pages and their assets.
 * Marketo's `x-api-key` is never looked at, so the SSFS key opens nothing here (config refuses an
 * admin key equal to it). Digests of equal length are compared in constant time, so neither the
 * key's content nor its length leaks through response timing.
 */
export const ADMIN_REALM_CHALLENGE = 'Basic realm="marketo-dynamics-sync admin", charset="UTF-8"'

export function createAdminAuth (adminApiKey: string): onRequestAsyncHookHandler {
  const expected = hash('sha256', adminApiKey, 'buffer')
  return async function checkAdminKey (request, reply) {
    const presented = presentedKey(request.headers.authorization)
    const candidate = hash('sha256', presented ?? '', 'buffer')
    if (presented === undefined || !timingSafeEqual(candidate, expected)) {
      void reply.header('www-authenticate', ADMIN_REALM_CHALLENGE)
      // Answered here rather than thrown: the dashboard's plugin has an error handler of its own,
      // and every 401 of the admin surface must have the service's one error shape.
      replyWithError(new AdminUnauthorizedError() as unknown as FastifyError, request, reply)
      return await reply
    }
    if (!SAFE_METHODS.has(request.method) && isCrossSite(request.headers, request.host)) {
      replyWithError(new AdminCrossSiteRequestError() as unknown as FastifyError, request, reply)
      return await reply
    }
  }
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])

/**
 * Pure: whether a request was sent by a page of another site. A browser that has the key from the
 * Basic prompt attaches it to every request to this origin, whichever page sends it, so a hostile
 * page could pause the sync or retry every parked change (a "simple" POST needs no preflight). A
 * browser says where a request comes from: `Sec-Fetch-Site` (Fetch Metadata; `same-origin`, or
 * `none` for one the person typed), else `Origin`. A client that is not a browser (curl, scripts)
 * sends neither and is not affected.
 */
export function isCrossSite (headers: Readonly<Record<string, string | string[] | undefined>>, host: string): boolean {
  const site = headers['sec-fetch-site']
  if (typeof site === 'string') return site !== 'same-origin' && site !== 'none'
  const origin = headers.origin
  if (typeof origin !== 'string') return false
  // The host only: behind a TLS-terminating proxy the request arrives as http while the page is https.
  try { return new URL(origin).host !== host } catch { return true }
}

/** The key a request presents, from either scheme (names case-insensitive, RFC 9110 §11.1); undefined for none. */
export function presentedKey (authorization: string | undefined): string | undefined {
  if (authorization === undefined) return undefined
  const match = /^\s*(\S+)\s+(\S+)\s*$/.exec(authorization)
  if (match === null) return undefined
  const [, scheme, credentials] = match as unknown as [string, string, string]
  if (scheme.toLowerCase() === 'bearer') return credentials
  if (scheme.toLowerCase() !== 'basic') return undefined
  const pair = Buffer.from(credentials, 'base64').toString('utf8')
  const colon = pair.indexOf(':')
  // user-id cannot contain a colon (RFC 7617 §2): the password is everything after the first one.
  return colon === -1 ? undefined : pair.slice(colon + 1)
}
