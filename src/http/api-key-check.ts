import { createHash, timingSafeEqual } from 'node:crypto'
import type { onRequestAsyncHookHandler } from 'fastify'
import { UnauthorizedError } from '../errors.ts'

/**
 * Marketo authenticates with the installed `apiKey` scheme: header `x-api-key` (§1.2).
 * Digests of equal length are compared in constant time, so neither the key's content nor its
 * length leaks through response timing.
 */
export function createApiKeyCheck (apiKey: string): onRequestAsyncHookHandler {
  const expected = createHash('sha256').update(apiKey).digest()
  return async function checkApiKey (request) {
    const presented = request.headers['x-api-key']
    const candidate = createHash('sha256').update(typeof presented === 'string' ? presented : '').digest()
    if (typeof presented !== 'string' || !timingSafeEqual(candidate, expected)) throw new UnauthorizedError()
  }
}
