import t from 'tap'
import { Redis } from 'ioredis'
import { startLocalRedis } from '../../sandbox/redis-server.ts'
import { CheckpointConflictError, CheckpointStore } from '../../src/background-sync/checkpoints.ts'
import { syncCheckpointKey } from '../../src/queue/redis-keys.ts'

/** The background sync's checkpoints on a real Redis: versioned saves, refused when stale. */

const redisServer = await startLocalRedis()
const redis = new Redis(redisServer.url)
t.teardown(async () => {
  redis.disconnect()
  await redisServer.stop()
})

const leads = { direction: 'dynamics-to-marketo', table: 'lead' } as const
const contacts = { direction: 'dynamics-to-marketo', table: 'contact' } as const

t.test('no checkpoint yet: version 0 and no cursor, a full read; each save adds one to the version', async (t) => {
  const store = new CheckpointStore(redis, 'c1')
  t.same(await store.load(leads), { version: 0, cursor: undefined, savedAt: undefined })
  t.match(await store.save(leads, 0, 'https://org/next-1'), { version: 1, cursor: 'https://org/next-1' })
  t.match(await store.save(leads, 1, 'https://org/delta-1'), { version: 2, cursor: 'https://org/delta-1' })
  t.match(await store.load(leads), { version: 2, cursor: 'https://org/delta-1', savedAt: Date })
  t.same(await store.load(contacts), { version: 0, cursor: undefined, savedAt: undefined }, 'each table has its own')
})

t.test('a checkpoint saved with a stale version is refused and left as it was', async (t) => {
  const store = new CheckpointStore(redis, 'c2')
  await store.save(leads, 0, 'https://org/page-1')
  await store.save(leads, 1, 'https://org/page-2')
  const error = await store.save(leads, 1, 'https://org/page-2-again').catch((e: unknown) => e)
  t.type(error, CheckpointConflictError)
  t.match(error, { code: 'CHECKPOINT_CONFLICT', expectedVersion: 1, currentVersion: 2 })
  t.match(await store.load(leads), { version: 2, cursor: 'https://org/page-2' })
})

t.test('two runners that loaded the same version: exactly one advances it', async (t) => {
  const store = new CheckpointStore(redis, 'c3')
  await store.save(leads, 0, 'https://org/page-1')
  const connections = Array.from({ length: 10 }, () => new Redis(redisServer.url))
  t.teardown(() => { for (const connection of connections) connection.disconnect() })
  const runners = connections.map((connection) => new CheckpointStore(connection, 'c3'))
  const loaded = await Promise.all(runners.map((runner) => runner.load(leads)))
  t.same(new Set(loaded.map((checkpoint) => checkpoint.version)), new Set([1]))
  const results = await Promise.allSettled(runners.map((runner, index) => runner.save(leads, 1, `https://org/page-2-by-${index}`)))
  const winners = results.flatMap((result, index) => result.status === 'fulfilled' ? [index] : [])
  t.equal(winners.length, 1, 'one save succeeds')
  t.ok(results.every((result) => result.status === 'fulfilled' || result.reason instanceof CheckpointConflictError), 'the others are conflicts')
  t.match(await store.load(leads), { version: 2, cursor: `https://org/page-2-by-${winners[0]}` })
})

t.test('a reset drops the cursor but keeps counting, so a runner from before it is still refused', async (t) => {
  const store = new CheckpointStore(redis, 'c4')
  await store.save(contacts, 0, 'https://org/delta-1')
  t.match(await store.save(contacts, 1, undefined), { version: 2, cursor: undefined })
  t.match(await store.load(contacts), { version: 2, cursor: undefined })
  await t.rejects(store.save(contacts, 0, 'https://org/from-a-runner-that-saw-nothing'), CheckpointConflictError)
  await t.rejects(store.save(contacts, 1, 'https://org/from-before-the-reset'), CheckpointConflictError)
})

t.test('the key: under REDIS_KEY_PREFIX, one hash tag per checkpoint (a Redis Cluster runs the script on one slot)', async (t) => {
  const key = syncCheckpointKey('mds', 'dynamics-to-marketo', 'lead')
  t.equal(key, 'mds:{checkpoint:dynamics-to-marketo:lead}')
  t.not(syncCheckpointKey('mds', 'dynamics-to-marketo', 'contact'), key)
  const store = new CheckpointStore(redis, 'c5')
  await store.save(leads, 0, 'https://org/delta')
  t.same(await redis.keys('c5:*'), ['c5:{checkpoint:dynamics-to-marketo:lead}'])
})
