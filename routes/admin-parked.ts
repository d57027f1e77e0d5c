import type { FastifyPluginAsync } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { ParkedChange } from '../src/background-sync/parked-changes.ts'
import {
  discardParkedFailure, discardParkedFailures, getParkedFailure, listParkedFailures, retryParkedFailure, retryParkedFailures,
  type ParkedFailureDeps
} from '../src/admin/parked-failures.ts'
import { requestLogger } from '../src/admin/request-logger.ts'
import { ErrorResponse } from '../src/schemas/common.ts'
import {
  ADMIN_SECURITY, ADMIN_TAG, ParkedBulkRetryAnswer, ParkedDiscardAnswer, ParkedFailure, ParkedFailureList, ParkedFailureParams,
  ParkedFailureQuery, ParkedRetryAnswer
} from '../src/schemas/admin.ts'

/** Parked failures (issue 13 §4): list, read, retry and discard one, or all a filter selects. Behind the admin auth. */
const adminParkedRoutes: FastifyPluginAsync<ParkedFailureDeps> = async (fastify, deps) => {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const common = { tags: [ADMIN_TAG], security: ADMIN_SECURITY }
  const refusals = { 400: ErrorResponse, 401: ErrorResponse }

  app.get('/parked', {
    schema: { ...common, summary: 'Changes a side refused, oldest first, by reason, direction, table and age', querystring: ParkedFailureQuery, response: { 200: ParkedFailureList, ...refusals } }
  }, async (request) => {
    const { entries, more } = await listParkedFailures(deps, request.query)
    return { entries: entries.map(asJson), more }
  })

  app.get('/parked/:id', {
    schema: { ...common, summary: 'One parked failure', params: ParkedFailureParams, response: { 200: ParkedFailure, ...refusals, 404: ErrorResponse } }
  }, async (request) => asJson(await getParkedFailure(deps, request.params.id)))

  app.post('/parked/:id/retry', {
    schema: {
      ...common,
      summary: 'Retry one, by its direction: marketo-to-dynamics writes the person\'s current Marketo values, dynamics-to-marketo the record as Dataverse holds it now, as a pass would (fix the data on the side at fault first)',
      params: ParkedFailureParams,
      response: { 200: ParkedRetryAnswer, ...refusals, 404: ErrorResponse, 503: ErrorResponse }
    }
  }, async (request) => ({ id: request.params.id, result: await retryParkedFailure(deps, request.params.id, requestLogger(request)) }))

  app.post('/parked/retry', {
    schema: { ...common, summary: 'Retry every parked failure the filter selects, either direction (at most the limit together, oldest first)', querystring: ParkedFailureQuery, response: { 200: ParkedBulkRetryAnswer, ...refusals, 503: ErrorResponse } }
  }, async (request) => ({ results: await retryParkedFailures(deps, request.query, requestLogger(request)) }))

  app.delete('/parked/:id', {
    schema: { ...common, summary: 'Discard one: give up on it', params: ParkedFailureParams, response: { 200: ParkedDiscardAnswer, ...refusals, 404: ErrorResponse } }
  }, async (request) => {
    await discardParkedFailure(deps, request.params.id)
    return { discarded: [request.params.id] }
  })

  app.delete('/parked', {
    schema: { ...common, summary: 'Discard every parked failure the filter selects (at most the limit, oldest first)', querystring: ParkedFailureQuery, response: { 200: ParkedDiscardAnswer, ...refusals } }
  }, async (request) => ({ discarded: await discardParkedFailures(deps, request.query) }))
}

function asJson (entry: ParkedChange): ParkedFailure {
  const dates = { parkedAt: entry.parkedAt.toISOString(), lastRefusedAt: entry.lastRefusedAt.toISOString(), fields: [...entry.fields], columns: [...entry.columns] }
  return entry.direction === 'marketo-to-dynamics' ? { ...entry, ...dates } : { ...entry, ...dates, personIds: [...entry.personIds] }
}

export default adminParkedRoutes
