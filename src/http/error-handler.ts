import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { STATUS_CODES } from 'node:http'
import { noteErrorCode } from './access-log.ts'

/**
 * Every error leaves as `{statusCode, code, error, message}`. A 4xx says what is wrong with the
 * request (validation, media type, size, JSON syntax, key); a 5xx says nothing of internals, which
 * go to the log instead.
 */
export function replyWithError (error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const statusCode = typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 600 ? error.statusCode : 500
  const code = error.code ?? (statusCode >= 500 ? 'INTERNAL_ERROR' : 'BAD_REQUEST')
  // A refusal is on the request's access-log line (with this code); only failures get their own.
  if (statusCode >= 500) request.log.error({ err: error }, 'request failed')
  noteErrorCode(reply, code)
  if (statusCode === 413) drainRefusedBody(request, reply)
  const exposeMessage = statusCode < 500 || (error.code !== undefined && error.code !== '' && statusCode === 503)
  void reply.code(statusCode).type('application/json; charset=utf-8').send({
    statusCode,
    code,
    error: STATUS_CODES[statusCode] ?? 'Error',
    message: exposeMessage ? error.message : 'internal error; see the service log'
  })
}

/** How long a refused oversized body may keep arriving before the connection is cut. */
const REFUSED_BODY_DRAIN_MS = 10_000

/**
 * A body over the limit is refused from its Content-Length, while the client is still sending it.
 * Closing then (Node's default here) resets the connection with unread bytes in flight, and the
 * client loses the 413 that was already on its way: it sees a dropped connection instead. So the
 * rest of the body is read and discarded (Node does that for a kept-alive connection), with a
 * deadline, after which the connection is cut regardless.
 */
function drainRefusedBody (request: FastifyRequest, reply: FastifyReply): void {
  const raw = request.raw
  if (raw.complete) return
  void reply.header('connection', 'keep-alive')
  const timer = setTimeout(() => { raw.socket?.destroy() }, REFUSED_BODY_DRAIN_MS)
  timer.unref()
  raw.once('end', () => { clearTimeout(timer) })
  raw.once('close', () => { clearTimeout(timer) })
}
