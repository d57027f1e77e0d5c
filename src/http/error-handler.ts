import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { STATUS_CODES } from 'node:http'

/**
 * Every error leaves as `{statusCode, code, error, message}`. A 4xx says what is wrong with the
 * request (validation, media type, size, JSON syntax, key); a 5xx says nothing of internals, which
 * go to the log instead.
 */
export function replyWithError (error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const statusCode = typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 600 ? error.statusCode : 500
  if (statusCode >= 500) {
    request.log.error({ err: error }, 'request failed')
  } else {
    request.log.info({ code: error.code, statusCode }, 'request refused')
  }
  const exposeMessage = statusCode < 500 || (error.code !== undefined && error.code !== '' && statusCode === 503)
  void reply.code(statusCode).type('application/json; charset=utf-8').send({
    statusCode,
    code: error.code ?? (statusCode >= 500 ? 'INTERNAL_ERROR' : 'BAD_REQUEST'),
    error: STATUS_CODES[statusCode] ?? 'Error',
    message: exposeMessage ? error.message : 'internal error; see the service log'
  })
}
