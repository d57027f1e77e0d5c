import type { FastifyPluginAsync } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { explainPerson, explainRecord, type AdminPairDeps, type PairExplanation } from '../src/admin/explain.ts'
import type { PairDirectionRecord } from '../src/background-sync/pair-state-store.ts'
import { ErrorResponse } from '../src/schemas/common.ts'
import { ADMIN_SECURITY, ADMIN_TAG, ExplainAnswer, ExplainPersonBody, ExplainPersonParams, ExplainRecordParams } from '../src/schemas/admin.ts'

/** "Why didn't it sync?" (issue 13 §4): one answer about a person or a record. Behind the admin auth. */
const adminExplainRoutes: FastifyPluginAsync<AdminPairDeps> = async (fastify, deps) => {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const common = { tags: [ADMIN_TAG], security: ADMIN_SECURITY }
  const response = { 200: ExplainAnswer, 400: ErrorResponse, 401: ErrorResponse, 404: ErrorResponse, 503: ErrorResponse }
  const description = 'The person ⇄ record link, each direction\'s last decision and when, which side owns each mapped field (the mapping\'s directions and the collision rule: Marketo wins leads, Dynamics wins contacts), the record\'s sync filter new_synctomkto read live from Dynamics, and any parked failure with its code. Dynamics\' message is in the person\'s Marketo activity log ("Microsoft Sync Failed"), never kept here.'

  app.get('/explain/person/:idOrEmail', {
    schema: { ...common, summary: 'Why didn\'t this person sync? By Marketo id (an email works too, but lands in proxies\' access logs: POST it instead)', description, params: ExplainPersonParams, response }
  }, async (request) => asJson(await explainPerson(deps, request.params.idOrEmail)))

  // The same question with the person in the body, so an email never appears in a URL (a reverse
  // proxy's access log, the browser's history). A read, but a POST for that reason.
  app.post('/explain/person', {
    schema: { ...common, summary: 'Why didn\'t this person sync? By email or Marketo id in the body', description, body: ExplainPersonBody, response }
  }, async (request) => asJson(await explainPerson(deps, 'email' in request.body ? request.body.email : String(request.body.marketoId))))

  app.get('/explain/record/:table/:id', {
    schema: { ...common, summary: 'Why didn\'t this Dynamics lead or contact sync?', description, params: ExplainRecordParams, response }
  }, async (request) => asJson(await explainRecord(deps, request.params.table, request.params.id)))
}

function asJson (explanation: PairExplanation): ExplainAnswer {
  const lastSync = (last: PairDirectionRecord | null): ExplainAnswer['lastSync']['dynamics-to-marketo'] => last === null
    ? null
    : { at: last.at.toISOString(), outcome: last.outcome, ...(last.code === undefined ? {} : { code: last.code }), ...(last.syncedAt === undefined ? {} : { syncedAt: last.syncedAt.toISOString() }) }
  return {
    ...explanation,
    person: explanation.person === null ? null : { ...explanation.person, sameEmailPersonIds: [...explanation.person.sameEmailPersonIds] },
    fields: explanation.fields.map((field) => ({ ...field })),
    syncFilter: explanation.syncFilter === null ? null : { ...explanation.syncFilter },
    lastSync: { 'dynamics-to-marketo': lastSync(explanation.lastSync['dynamics-to-marketo']), 'marketo-to-dynamics': lastSync(explanation.lastSync['marketo-to-dynamics']) },
    parked: explanation.parked.map((entry) => {
      const dates = { parkedAt: entry.parkedAt.toISOString(), lastRefusedAt: entry.lastRefusedAt.toISOString(), fields: [...entry.fields], columns: [...entry.columns] }
      return entry.direction === 'marketo-to-dynamics' ? { ...entry, ...dates } : { ...entry, ...dates, personIds: [...entry.personIds] }
    }),
    notes: [...explanation.notes]
  }
}

export default adminExplainRoutes
