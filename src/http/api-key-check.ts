import { hash, timingSafeEqual } from 'node:crypto'
import type { onRequestAsyncHookHandler } from 'fastify'
import { UnauthorizedError } from '../errors.ts'

/**
 * Marketo authenticates with the installed `apiKey` scheme: header `x-api-key` (§1.2).
 * Digests of equal length are compared in constant time, so neither the key's content nor its
 * length leaks through response timing.
 */
export function createApiKeyCheck (apiKey: string): onRequestAsyncHookHandler {
  const expected = hash('sha256', apiKey, 'buffer')
  return async function checkApiKey (request) {
    const presented = request.headers['x-api-key']
    const candidate = hash('sha256', typeof presented === 'string' ? presented : '', 'buffer')
    if (typeof presented !== 'string' || !timingSafeEqual(candidate, expected)) throw new UnauthorizedError()
  }
}
