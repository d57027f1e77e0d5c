import type { FastifyPluginAsync, FastifyReply } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { renderStatusPage, statusPage, type StatusPageDeps } from '../src/admin/status-page.ts'
import { STATUS_PAGE_SCRIPT, STATUS_PAGE_STYLE } from '../src/admin/status-page-assets.ts'
import { ADMIN_SECURITY, ADMIN_TAG } from '../src/schemas/admin.ts'
import { ErrorResponse } from '../src/schemas/common.ts'

/**
 * The status page (issue 13 §5): GET /admin, an HTML page for a person with a browser, and its script
 * and style sheet. Behind the admin auth like the rest of /admin. All three are hidden from the OpenAPI
 * document, as the queue dashboard is: they are for a browser, and the admin API they call is there.
 *
 * `default-src 'self'`: the page runs only the script served here and loads nothing from elsewhere,
 * so even a value that slipped through the escaping could not run script of its own.
 */
export const STATUS_PAGE_CSP = "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

const adminStatusPageRoutes: FastifyPluginAsync<StatusPageDeps> = async (fastify, deps) => {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()

  app.get('/', {
    schema: {
      hide: true,
      tags: [ADMIN_TAG],
      security: ADMIN_SECURITY,
      summary: 'The status page (HTML, for a browser): lag, backlog and throughput per direction, Marketo calls spent today, parked failures with a retry button, pause and resume, explain',
      produces: ['text/html'],
      response: { 200: Type.String({ description: 'An HTML page' }), 401: ErrorResponse }
    }
  }, async (_request, reply) => {
    const page = renderStatusPage(await statusPage(deps))
    return await sendAsset(reply, 'text/html; charset=utf-8', page)
  })

  app.get('/status-page.js', {
    schema: { hide: true, tags: [ADMIN_TAG], response: { 200: Type.String(), 401: ErrorResponse } }
  }, async (_request, reply) => await sendAsset(reply, 'text/javascript; charset=utf-8', STATUS_PAGE_SCRIPT))

  app.get('/status-page.css', {
    schema: { hide: true, tags: [ADMIN_TAG], response: { 200: Type.String(), 401: ErrorResponse } }
  }, async (_request, reply) => await sendAsset(reply, 'text/css; charset=utf-8', STATUS_PAGE_STYLE))
}

async function sendAsset (reply: FastifyReply, contentType: string, body: string): Promise<FastifyReply> {
  // A string with a non-JSON type is sent as is (no response serializer runs for it).
  return await reply
    .header('content-type', contentType)
    .header('content-security-policy', STATUS_PAGE_CSP)
    .header('x-content-type-options', 'nosniff')
    .header('cache-control', 'no-store')
    .send(body)
}

export default adminStatusPageRoutes
