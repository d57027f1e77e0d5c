import t from 'tap'
import { Redis } from 'ioredis'
import { startLocalRedis } from '../../sandbox/redis-server.ts'
import { PairStateStore, pairSyncRecord } from '../../src/background-sync/pair-state-store.ts'
import { syncPairMetaKey, syncPairStateKey } from '../../src/queue/redis-keys.ts'

/**
 * A pair's sync record on a real Redis: what each direction last decided and when, written with the
 * state it saves (or alone, for an outcome that saves none), and dropped with the pair.
 */

const redisServer = await startLocalRedis()
const redis = new Redis(redisServer.url)
t.teardown(async () => {
  redis.disconnect()
  await redisServer.stop()
})

const RECORD = '0b6f7f0e-1c1a-4f7e-9a51-3a1b2c3d4e5f'
const OTHER = '1c7a8f1f-2d2b-4a8f-8b62-4b2c3d4e5f60'

t.test('a save records its direction: written with the state, a refusal alone with its code, an unchanged patch still noted', async (t) => {
  const store = new PairStateStore(redis, 'p1')
  const first = new Date('2026-05-04T10:00:00.000Z')
  await store.save('lead', new Map([[RECORD, { title: 'f1' }]]), undefined, { direction: 'dynamics-to-marketo', at: first })
  t.same(await store.syncRecord('lead', RECORD), { 'dynamics-to-marketo': { at: first, outcome: 'written', syncedAt: first } })

  const refusedAt = new Date('2026-05-04T10:01:00.000Z')
  await store.save('lead', new Map(), undefined, { direction: 'marketo-to-dynamics', at: refusedAt, outcomes: new Map([[RECORD, { outcome: 'refused', code: '0x80044331' }]]) })
  t.same((await store.syncRecord('lead', RECORD))['marketo-to-dynamics'], { at: refusedAt, outcome: 'refused', code: '0x80044331' }, 'no state saved: no syncedAt')
  t.same(await redis.hgetall(syncPairStateKey('p1', 'lead', RECORD)), { title: 'f1' }, 'the state untouched')

  const echoAt = new Date('2026-05-04T10:02:00.000Z')
  const loaded = await store.load('lead', [RECORD])
  await store.save('lead', new Map([[RECORD, { title: 'f1' }]]), loaded, { direction: 'marketo-to-dynamics', at: echoAt, outcomes: new Map([[RECORD, { outcome: 'unchanged' }]]) })
  t.same((await store.syncRecord('lead', RECORD))['marketo-to-dynamics'], { at: echoAt, outcome: 'unchanged', syncedAt: echoAt }, 'the refusal\'s code is gone')
  t.same((await store.syncRecord('lead', RECORD))['dynamics-to-marketo'], { at: first, outcome: 'written', syncedAt: first }, 'the other direction kept')
})

t.test('a save without a note writes no record (callers that do not record)', async (t) => {
  const store = new PairStateStore(redis, 'p2')
  await store.save('contact', new Map([[OTHER, { title: 'f' }]]))
  t.equal(await redis.exists(syncPairMetaKey('p2', 'contact', OTHER)), 0)
})

t.test('forget drops the record with the state', async (t) => {
  const store = new PairStateStore(redis, 'p3')
  await store.save('lead', new Map([[RECORD, { title: 'f' }]]), undefined, { direction: 'dynamics-to-marketo' })
  await store.forget('lead', [RECORD])
  t.equal(await redis.exists(syncPairStateKey('p3', 'lead', RECORD), syncPairMetaKey('p3', 'lead', RECORD)), 0)
  t.same(await store.syncRecord('lead', RECORD), {})
})

t.test('pairSyncRecord leaves out what is not a record', async (t) => {
  t.same(pairSyncRecord({ 'dynamics-to-marketo:at': 'x', 'dynamics-to-marketo:outcome': 'written', 'marketo-to-dynamics:at': '1', 'marketo-to-dynamics:outcome': 'exploded' }), {})
})
