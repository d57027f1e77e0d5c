import type { FastifyRequest } from 'fastify'
import type { Logger } from 'pino'

/**
 * The request's logger, as the pino Logger the admin's functions take: each line they write then
 * carries the request's `reqId` (issue 13 §7). The app is built with a pino instance
 * (`loggerInstance`, src/app.ts), so `request.log` is a pino child logger; Fastify only types it
 * as its narrower base interface.
 */
export function requestLogger (request: FastifyRequest): Logger {
  return request.log as Logger
}
