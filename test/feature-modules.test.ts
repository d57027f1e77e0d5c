import t, { test } from 'tap'
import { once } from 'node:events'
import pino from 'pino'
import type { RedisClient } from '../src/queue/connections.ts'
import { startLocalRedis } from '../sandbox/redis-server.ts'
import { loadConfig } from '../src/config.ts'
import { buildApp } from '../src/app.ts'
import { buildWorker } from '../src/build-worker.ts'
import type { ApiFeature, WorkerFeature } from '../src/feature-module.ts'
import { createApiRedisConnection, createWorkerRedisConnection } from '../src/queue/connections.ts'
import { REQUIRED_ENVIRONMENT } from './helpers/valid-environment.ts'

/**
 * The API and the worker are lists of features: a new feature (the background sync) plugs in
 * without touching the flow step. Here two stand-in features, on a real Redis.
 */

const redis = await startLocalRedis()
t.teardown(async () => { await redis.stop() })

const config = loadConfig({ ...REQUIRED_ENVIRONMENT, REDIS_URL: redis.url })
const logger = pino({ level: 'silent' })

test('a worker starts every feature on shared connections, and closes each once, then the connections', async (t) => {
  const events: string[] = []
  const opened: RedisClient[] = []
  const feature = (name: string, closeFails: boolean): WorkerFeature => ({
    name,
    start ({ connect }) {
      const connection = connect(`${name}-commands`)
      opened.push(connection)
      events.push(`${name} started`)
      return {
        async close () {
          events.push(`${name} closing, its connection ${connection.status}`)
          if (closeFails) throw new Error(`${name} could not close`)
        }
      }
    }
  })
  const worker = buildWorker({
    config,
    logger,
    connect: (name) => createWorkerRedisConnection(config.redis.url, name),
    features: [feature('flow-step', true), feature('background-sync', false)]
  })
  await Promise.all(opened.map(async (c) => { if (c.status !== 'ready') await once(c, 'ready') }))
  t.same(events, ['flow-step started', 'background-sync started'])

  const ended = opened.map(async (c) => { await once(c, 'end') })
  const [first, second] = [worker.close(), worker.close()]
  await Promise.all([first, second])
  await Promise.all(ended)
  t.same(events.slice(2).sort(), [
    'background-sync closing, its connection ready',
    'flow-step closing, its connection ready'
  ], 'each feature closed once, while its connection was still open, even though the other one failed to close')
  t.ok(opened.every((c) => c.status === 'end'), 'then every connection is closed')
  await worker.close()
  t.equal(events.length, 4, 'closing again does nothing')
})

test('the API serves its shared core and every feature\'s routes', async (t) => {
  const connection = createApiRedisConnection(config.redis.url, 'test-api')
  t.teardown(() => { connection.disconnect() })
  const feature: ApiFeature = {
    name: 'background-sync',
    async register (app, context) {
      app.get('/sync/status', async () => ({ prefix: context.config.redis.keyPrefix }))
    }
  }
  const app = await buildApp({ config, logger, redis: connection, features: [feature] })
  t.teardown(async () => { await app.close() })
  t.equal((await app.inject('/health/live')).statusCode, 200, 'the core: health')
  t.equal((await app.inject('/docs/json')).statusCode, 200, 'the core: the developers\' API document')
  const status = await app.inject('/sync/status')
  t.same(status.json(), { prefix: 'mds' }, 'the feature, given the shared config')
  t.equal((await app.inject({ method: 'POST', url: '/submitAsyncAction', payload: {} })).statusCode, 404, 'and no feature that was not listed')
  t.equal((await app.inject('/openapi.json')).statusCode, 404, 'the SSFS definition is the flow step\'s, not the core\'s')
})
