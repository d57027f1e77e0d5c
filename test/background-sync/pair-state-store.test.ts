import t from 'tap'
import { Redis } from 'ioredis'
import { startLocalRedis } from '../../sandbox/redis-server.ts'
import { PairStateStore, statePatch } from '../../src/background-sync/pair-state-store.ts'

/**
 * The pairs' last-synced states on a real Redis. The two directions are separate passes that can
 * load one pair at the same moment; each saves only what it decided, so neither undoes the other.
 */

const redisServer = await startLocalRedis()
const redis = new Redis(redisServer.url)
t.teardown(async () => {
  redis.disconnect()
  await redisServer.stop()
})

const RECORD = '0b6f7f0e-1c1a-4f7e-9a51-3a1b2c3d4e5f'

t.test('statePatch: the fields set or changed, and the fields dropped', async (t) => {
  t.same(statePatch({ a: '1', b: '2', c: '3' }, { a: '1', b: '9', d: '4' }), { set: { b: '9', d: '4' }, removed: ['c'] })
  t.same(statePatch({ a: '1' }, { a: '1' }), { set: {}, removed: [] }, 'nothing decided, nothing written')
  t.same(statePatch({}, { a: '1' }), { set: { a: '1' }, removed: [] })
})

t.test('two passes that loaded one pair at once and decided different fields: both are kept', async (t) => {
  const store = new PairStateStore(redis, 'p1')
  await store.save('lead', new Map([[RECORD, { firstName: 'f0', title: 't0', city: 'c0' }]]))
  // Both directions load the same state, before either saves.
  const marketoPass = await store.load('lead', [RECORD])
  const dynamicsPass = await store.load('lead', [RECORD])
  // Marketo → Dynamics carried a title edit; Dynamics → Marketo carried a city edit and dropped firstName.
  await store.save('lead', new Map([[RECORD, { ...marketoPass.get(RECORD)!, title: 't1' }]]), marketoPass)
  const { firstName: _dropped, ...dynamicsState } = dynamicsPass.get(RECORD)!
  await store.save('lead', new Map([[RECORD, { ...dynamicsState, city: 'c1' }]]), dynamicsPass)
  t.same((await store.load('lead', [RECORD])).get(RECORD), { title: 't1', city: 'c1' }, 'the title of the first save survives the second')
})

t.test('a new pair (no loaded state) replaces whatever the record held', async (t) => {
  const store = new PairStateStore(redis, 'p2')
  await store.save('contact', new Map([[RECORD, { stale: 'x', title: 't0' }]]))
  await store.save('contact', new Map([[RECORD, { title: 't1' }]]))
  t.same((await store.load('contact', [RECORD])).get(RECORD), { title: 't1' })
  await store.save('contact', new Map([[RECORD, {}]]))
  t.same((await store.load('contact', [RECORD])).get(RECORD), {}, 'an empty new state leaves nothing')
})

t.test('a patch that drops every field leaves an empty state', async (t) => {
  const store = new PairStateStore(redis, 'p3')
  await store.save('lead', new Map([[RECORD, { title: 't0' }]]))
  const loaded = await store.load('lead', [RECORD])
  await store.save('lead', new Map([[RECORD, {}]]), loaded)
  t.same((await store.load('lead', [RECORD])).get(RECORD), {})
})
