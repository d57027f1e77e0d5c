import type { FastifyInstance, FastifyReply } from 'fastify'

/**
 * One line per request, at info, written when the response has gone: what an operator needs to
 * read traffic (method, route, status, duration, request id) and nothing that could be personal —
 * no body, no headers, no query string. Fastify's own request logging (two lines, the raw URL
 * with its query string, the remote address) is switched off in `buildApp`
 * (`disableRequestLogging`).
 *
 * The route is the pattern that matched (`/getPicklist`, not the URL as sent); a request no route
 * matched is logged with `route: null`. The request id comes from the request's child logger
 * (`reqId`), as on every other line of that request. A refused request carries the error's code
 * (e.g. `FST_ERR_VALIDATION`), noted by the error handler, so why it was refused is on the line too.
 */
export function registerAccessLog (app: FastifyInstance): void {
  app.addHook('onResponse', async (request, reply) => {
    const code = errorCodes.get(reply)
    request.log.info({
      method: request.method,
      route: request.routeOptions.url ?? null,
      statusCode: reply.statusCode,
      durationMs: Math.round(reply.elapsedTime * 100) / 100,
      ...(code === undefined ? {} : { code })
    }, 'request')
  })
}

const errorCodes = new WeakMap<FastifyReply, string>()

/** The error handler records the code it answered with, for the request's access-log line. */
export function noteErrorCode (reply: FastifyReply, code: string): void {
  errorCodes.set(reply, code)
}
