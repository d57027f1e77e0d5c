import t from 'tap'
import { Redis } from 'ioredis'
import { startLocalRedis } from '../../sandbox/redis-server.ts'
import { RecordLinkStore } from '../../src/links/record-link-store.ts'
import { personLinkKey, recordLinkKey } from '../../src/queue/redis-keys.ts'

/** The person ⇄ record link on a real Redis. */

const redisServer = await startLocalRedis()
const redis = new Redis(redisServer.url)
t.teardown(async () => {
  redis.disconnect()
  await redisServer.stop()
})

let run = 0
function freshStore (): { store: RecordLinkStore, prefix: string } {
  const prefix = `links-test-${++run}`
  return { store: new RecordLinkStore(redis, prefix), prefix }
}

t.test('a new link is readable from both ends', async (t) => {
  const { store, prefix } = freshStore()
  await store.set(11, { type: 'Lead', id: 'lead-a' })
  t.same(await store.getMany([11]), new Map([[11, { type: 'Lead', id: 'lead-a' }]]))
  t.equal(await redis.get(recordLinkKey(prefix, 'lead', 'lead-a')), '11')
})

t.test('a person relinked to another record: the previous record no longer points at the person', async (t) => {
  const { store, prefix } = freshStore()
  await store.set(12, { type: 'Lead', id: 'lead-b' })
  await store.set(12, { type: 'Contact', id: 'contact-b' })
  t.equal(await redis.get(recordLinkKey(prefix, 'lead', 'lead-b')), null, 'the old lead is unlinked')
  t.equal(await redis.get(recordLinkKey(prefix, 'contact', 'contact-b')), '12')
  t.same(await store.getMany([12]), new Map([[12, { type: 'Contact', id: 'contact-b' }]]))
})

t.test('setting the same link again keeps it', async (t) => {
  const { store, prefix } = freshStore()
  await store.set(13, { type: 'Lead', id: 'lead-c' })
  await store.set(13, { type: 'Lead', id: 'lead-c' })
  t.equal(await redis.get(recordLinkKey(prefix, 'lead', 'lead-c')), '13')
})

t.test('the previous record is left alone when it has since been linked to someone else', async (t) => {
  const { store, prefix } = freshStore()
  await store.set(14, { type: 'Lead', id: 'lead-d' })
  // Another writer linked lead-d to person 15 without going through 14 (a stale person hash).
  await redis.set(recordLinkKey(prefix, 'lead', 'lead-d'), '15')
  await store.set(14, { type: 'Contact', id: 'contact-d' })
  t.equal(await redis.get(recordLinkKey(prefix, 'lead', 'lead-d')), '15', 'the other person\'s link stays')
})

t.test('the link keys share one hash tag, so the one script runs on a Redis Cluster', async (t) => {
  const { prefix } = freshStore()
  const tag = (key: string) => /\{([^}]*)\}/.exec(key)?.[1]
  t.equal(tag(personLinkKey(prefix, 1)), tag(recordLinkKey(prefix, 'lead', 'x')))
  t.equal(tag(recordLinkKey(prefix, 'contact', 'y')), 'links')
})
