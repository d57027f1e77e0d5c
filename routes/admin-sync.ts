import type { FastifyPluginAsync } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { pauseSyncDirection, resumeSyncDirection, syncDirections, type DirectionStatus, type SyncDirectionDeps } from '../src/admin/sync-directions.ts'
import { ErrorResponse } from '../src/schemas/common.ts'
import { ADMIN_SECURITY, ADMIN_TAG, SyncDirectionAnswer, SyncDirectionList, SyncDirectionParams } from '../src/schemas/admin.ts'
import type { Static } from 'typebox'
import type { SyncDirectionStatus } from '../src/schemas/admin.ts'

/** The background sync's directions (issue 13 §4): cursor, lag, passes waiting; pause and resume. Behind the admin auth. */
const adminSyncRoutes: FastifyPluginAsync<SyncDirectionDeps> = async (fastify, deps) => {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const common = { tags: [ADMIN_TAG], security: ADMIN_SECURITY }

  app.get('/sync', {
    schema: { ...common, summary: 'Each direction: its cursors (kind, version, when saved), lag, pass jobs, paused or not', response: { 200: SyncDirectionList, 401: ErrorResponse } }
  }, async () => ({ directions: (await syncDirections(deps)).map(asJson) }))

  app.post('/sync/:direction/pause', {
    schema: {
      ...common,
      summary: 'Pause a direction: its next passes read nothing and advance nothing (a pass already running finishes its page)',
      params: SyncDirectionParams,
      response: { 200: SyncDirectionAnswer, 400: ErrorResponse, 401: ErrorResponse }
    }
  }, async (request) => ({ direction: asJson(await pauseSyncDirection(deps, request.params.direction)) }))

  app.post('/sync/:direction/resume', {
    schema: {
      ...common,
      summary: 'Resume a direction: its next pass reads on from its cursor, so what changed meanwhile arrives',
      params: SyncDirectionParams,
      response: { 200: SyncDirectionAnswer, 400: ErrorResponse, 401: ErrorResponse }
    }
  }, async (request) => ({ direction: asJson(await resumeSyncDirection(deps, request.params.direction)) }))
}

function asJson (status: DirectionStatus): Static<typeof SyncDirectionStatus> {
  return {
    direction: status.direction,
    paused: status.paused,
    pausedAt: status.pausedAt?.toISOString() ?? null,
    feeds: status.feeds.map((feed) => ({
      feed: feed.feed,
      cursor: { kind: feed.cursor.kind, version: feed.cursor.version, savedAt: feed.cursor.savedAt?.toISOString() ?? null },
      lagSeconds: feed.lagSeconds ?? null
    })),
    passes: { ...status.passes }
  }
}

export default adminSyncRoutes
