import { createBullBoard } from '@bull-board/api'
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter'
import { FastifyAdapter } from '@bull-board/fastify'
import { Queue } from 'bullmq'
import type { FastifyInstance } from 'fastify'
import type { ApiFeature } from '../feature-module.ts'
import { CheckpointStore } from '../background-sync/checkpoints.ts'
import { ParkedChangeStore } from '../background-sync/parked-changes.ts'
import { parkedChangeRetryDeps, type ParkedChangeRetryDepsSources } from '../background-sync/parked-change-retry-deps.ts'
import { SyncPauses } from '../background-sync/sync-pauses.ts'
import { QUEUE } from '../queue/names.ts'
import { queuePrefix } from '../queue/redis-keys.ts'
import { createAdminAuth } from './admin-auth.ts'
import adminParkedRoutes from '../../routes/admin-parked.ts'
import adminSyncRoutes from '../../routes/admin-sync.ts'
import adminStatusPageRoutes from '../../routes/admin-status-page.ts'
import { MarketoCallBudget } from '../marketo/marketo-call-budget.ts'
import { SyncThroughput } from './status-page-throughput.ts'
import adminExplainRoutes from '../../routes/admin-explain.ts'
import adminResyncRoutes from '../../routes/admin-resync.ts'
import { adminPairDeps, type AdminPairSources } from './resync.ts'

export type AdminApiDeps = Pick<ParkedChangeRetryDepsSources, 'dataverse' | 'marketo'> & AdminPairSources

/** Where the admin surface lives; the dashboard is under `<this>/queues`. */
export const ADMIN_PREFIX = '/admin'

/**
 * The admin API and queue dashboard (issue 13 §3, §4), a feature of the API process. Registered only
 * when ADMIN_API_KEY is set: without a key every `/admin` path is the app's plain 404, so a
 * deployment that never chose a key has no surface to probe. Everything under `/admin` is one
 * encapsulated plugin whose `onRequest` hook checks the key (src/admin/admin-auth.ts), so the
 * dashboard's pages, its JSON API and its static assets are all behind it, and nothing else is.
 *
 * The dashboard is bull-board over every queue of the registry (src/queue/names.ts). It is the one
 * place the API process loads BullMQ (the flow step's intake is a stream): the queues are opened on
 * the API's own fail-fast connection, never add a job themselves, and are closed with the app.
 * Its routes are hidden from the OpenAPI document (bull-board marks them `hide`).
 */
export function adminApiFeature (deps: AdminApiDeps): ApiFeature {
  return {
    name: 'admin',
    async register (app, { config, logger, redis }) {
      const adminApiKey = config.admin.apiKey
      if (adminApiKey === undefined) return
      const prefix = config.redis.keyPrefix
      const log = logger.child({ feature: 'admin' })

      const queues = Object.values(QUEUE).map((name) => {
        const queue = new Queue(name, { connection: redis, prefix: queuePrefix(prefix, name) })
        // A lost Redis is already logged by the API's connection watcher; this only keeps the event handled.
        queue.on('error', (error) => { log.debug({ err: error, queue: name }, 'admin queue error') })
        return queue
      })
      app.addHook('onClose', async () => { await Promise.allSettled(queues.map(async (queue) => { await queue.close() })) })

      const parked = new ParkedChangeStore(redis, prefix)
      const retryDeps = parkedChangeRetryDeps({ config, logger: log, redis, dataverse: deps.dataverse, marketo: deps.marketo })

      await app.register(async (admin: FastifyInstance) => {
        admin.addHook('onRequest', createAdminAuth(adminApiKey))
        // A 404 of its own, so the key is checked first there too: without it no admin path, served
        // or not (a missing dashboard asset), tells which exist.
        admin.setNotFoundHandler((request, reply) => {
          void reply.code(404).send({ statusCode: 404, code: 'NOT_FOUND', error: 'Not Found', message: `no route ${request.method} ${request.url.split('?')[0]}` })
        })

        const board = new FastifyAdapter()
        board.setBasePath(`${ADMIN_PREFIX}/queues`)
        createBullBoard({ queues: queues.map((queue) => new BullMQAdapter(queue)), serverAdapter: board })
        await admin.register(board.registerPlugin(), { prefix: '/queues' })

        await admin.register(adminParkedRoutes, { parked, retryDeps })
        const directions = {
          checkpoints: new CheckpointStore(redis, prefix),
          pauses: new SyncPauses(redis, prefix),
          queues: new Map(queues.map((queue) => [queue.name, queue])),
          redis,
          keyPrefix: prefix
        }
        await admin.register(adminSyncRoutes, directions)
        // The status page (issue 13 §5) reads what the routes above answer, and today's budget (read only).
        await admin.register(adminStatusPageRoutes, {
          redis,
          keyPrefix: prefix,
          directions,
          parked: { parked, retryDeps },
          budget: new MarketoCallBudget(redis, { keyPrefix: prefix, dailyBudget: config.marketo.callBudget.dailyCalls }),
          throughput: new SyncThroughput(redis, prefix),
          syncEnabled: config.sync.enabled
        })
        const pairDeps = adminPairDeps({ config, logger: log, redis, dataverse: deps.dataverse, marketo: deps.marketo, retryDeps })
        await admin.register(adminExplainRoutes, pairDeps)
        await admin.register(adminResyncRoutes, pairDeps)
      }, { prefix: ADMIN_PREFIX })
    }
  }
}
