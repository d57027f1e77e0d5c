import t from 'tap'
import { assignToPicklistCacheKey, emailClaimKeys, intakeStreamKeys, marketoCallBudgetKeys, personLinkKey, queuePrefix, recordLinkKey } from '../../src/queue/redis-keys.ts'
import { QUEUE } from '../../src/queue/names.ts'

/** The part of a key that decides its cluster slot (Redis cluster specification, "Hash tags"). */
function hashTag (key: string): string {
  const open = key.indexOf('{')
  const close = open === -1 ? -1 : key.indexOf('}', open + 1)
  return close > open + 1 ? key.slice(open + 1, close) : key
}

/** BullMQ names a queue's keys `<prefix>:<queue name>:<suffix>`. */
const bullmqKeys = (prefix: string, queue: typeof QUEUE[keyof typeof QUEUE]) =>
  ['wait', 'active', 'prioritized', 'meta', 'events', 'id', 'some-job-id'].map((suffix) => `${queuePrefix(prefix, queue)}:${queue}:${suffix}`)

const groups = (prefix: string) => ({
  flowStepQueue: bullmqKeys(prefix, QUEUE.flowStep),
  callbackQueue: bullmqKeys(prefix, QUEUE.flowStepCallback),
  intake: Object.values(intakeStreamKeys(prefix)),
  oneEmail: Object.values(emailClaimKeys(prefix, 'a1b2')),
  otherEmail: Object.values(emailClaimKeys(prefix, 'c3d4')),
  marketoCallBudget: Object.values(marketoCallBudgetKeys(prefix)),
  links: [personLinkKey(prefix, 42), recordLinkKey(prefix, 'lead', '6f1c'), personLinkKey(prefix, 43), recordLinkKey(prefix, 'contact', '7a2d')]
})

t.test('keys used together share one hash tag, so a Redis Cluster runs their scripts and transactions', async (t) => {
  for (const [group, keys] of Object.entries(groups('mds'))) {
    t.equal(new Set(keys.map(hashTag)).size, 1, `${group}: ${keys.map(hashTag).join(', ')}`)
  }
})

t.test('unrelated groups get different tags, so they can spread over the nodes', async (t) => {
  const tags = Object.values(groups('mds')).map((keys) => hashTag(keys[0]!))
  t.equal(new Set(tags).size, tags.length, tags.join(', '))
})

t.test('REDIS_KEY_PREFIX begins every key', async (t) => {
  const keys = [...Object.values(groups('tenant-a')).flat(), assignToPicklistCacheKey('tenant-a')]
  t.same(keys.filter((key) => !key.startsWith('tenant-a:')), [])
})

t.test('a prefix with a hash tag of its own puts every key in its slot: still one slot per command', async (t) => {
  const keys = Object.values(groups('{tenant}')).flat()
  t.same(new Set(keys.map(hashTag)), new Set(['tenant']))
})

t.test('a polled feed\'s pace shares its checkpoint\'s tag, like its lease', async (t) => {
  const { syncCheckpointKey, syncFeedPollPaceKey } = await import('../../src/queue/redis-keys.ts')
  t.equal(hashTag(syncFeedPollPaceKey('mds', 'marketo-to-dynamics', 'person')), hashTag(syncCheckpointKey('mds', 'marketo-to-dynamics', 'person')))
  t.ok(syncFeedPollPaceKey('tenant-a', 'marketo-to-dynamics', 'person').startsWith('tenant-a:'))
})

t.test('a table\'s deleted-record sweep shares its feed checkpoint\'s tag, and holds no record id in its name', async (t) => {
  const { syncCheckpointKey, syncDeletedRecordSweepKey } = await import('../../src/queue/redis-keys.ts')
  t.equal(hashTag(syncDeletedRecordSweepKey('mds', 'lead')), hashTag(syncCheckpointKey('mds', 'dynamics-to-marketo', 'lead')))
  t.equal(syncDeletedRecordSweepKey('mds', 'contact'), 'mds:{checkpoint:dynamics-to-marketo:contact}:deleted-sweep')
})
