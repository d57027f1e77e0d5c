import type { FastifyPluginAsync } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { resyncPerson, resyncRecord, type ResyncAnswer as Answer, type ResyncDeps } from '../src/admin/resync.ts'
import { requestLogger } from '../src/admin/request-logger.ts'
import { ErrorResponse } from '../src/schemas/common.ts'
import { ADMIN_SECURITY, ADMIN_TAG, ResyncAnswer, ResyncPersonBody, ResyncRecordBody } from '../src/schemas/admin.ts'

/** A forced resync of one pair (issue 13 §4), which Marketo's native sync cannot do. Behind the admin auth. */
const adminResyncRoutes: FastifyPluginAsync<ResyncDeps> = async (fastify, deps) => {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const common = { tags: [ADMIN_TAG], security: ADMIN_SECURITY }
  const response = { 200: ResyncAnswer, 400: ErrorResponse, 401: ErrorResponse, 404: ErrorResponse, 503: ErrorResponse }
  const description = 'Marketo\'s native sync has no way to force a resync; this does. The pair\'s last-synced state is dropped, so both sides are compared as a new pair by the documented rules: a field empty on one side is filled from the other, a field set on both is a collision the record type\'s side wins (Marketo on leads, Dynamics on contacts). The record is read from Dynamics now and delivered to Marketo (sync filter and duplicate rule included), then the person\'s values are written to Dynamics; a refusal is parked with its code, as a pass would. An unlinked person is answered as such: the background sync never creates records in Dynamics, the "Sync Person to Microsoft" flow step does.'

  app.post('/resync/person', {
    schema: { ...common, summary: 'Resync one person now, by Marketo id or email', description, body: ResyncPersonBody, response }
  }, async (request) => asJson(await resyncPerson(deps, request.body, requestLogger(request))))

  app.post('/resync/record', {
    schema: { ...common, summary: 'Resync one Dynamics lead or contact now', description, body: ResyncRecordBody, response }
  }, async (request) => asJson(await resyncRecord(deps, request.body.table, request.body.id, requestLogger(request))))
}

function asJson (answer: Answer): ResyncAnswer {
  return { ...answer, record: answer.record === null ? null : { ...answer.record }, notes: [...answer.notes] }
}

export default adminResyncRoutes
