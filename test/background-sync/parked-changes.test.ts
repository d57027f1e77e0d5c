import t from 'tap'
import { Redis } from 'ioredis'
import { startLocalRedis } from '../../sandbox/redis-server.ts'
import { ParkedChangeStore, parkedChangeId, settlesParkedFields, type ParkedRefusal } from '../../src/background-sync/parked-changes.ts'
import { parkedChangeKeys } from '../../src/queue/redis-keys.ts'

/** The parked-change store (issue 12 §9) on a real Redis: one entry per refused pair, bounded, listed, settled. */

const redisServer = await startLocalRedis()
const redis = new Redis(redisServer.url)
t.teardown(async () => {
  redis.disconnect()
  await redisServer.stop()
})

const ADA = '00000000-0000-4000-8000-00000000000a'
const BOB = '00000000-0000-4000-8000-00000000000b'
const CYD = '00000000-0000-4000-8000-00000000000c'

function refusal (recordId: string, overrides: Partial<ParkedRefusal> = {}): ParkedRefusal {
  return {
    direction: 'marketo-to-dynamics',
    table: 'lead',
    recordId,
    personId: 1001,
    fields: ['title'],
    columns: ['jobtitle'],
    code: '0x80044331',
    status: 400,
    activityLogged: true,
    ...overrides
  }
}

t.test('a refused pair is parked with its reason; refused again, its entry keeps its first date and counts the attempt', async (t) => {
  const store = new ParkedChangeStore(redis, 'p1')
  const first = new Date('2026-12-01T10:00:00Z')
  await store.park([refusal(ADA)], first)
  const id = parkedChangeId('marketo-to-dynamics', 'lead', ADA)
  t.match(await store.get(id), {
    id, direction: 'marketo-to-dynamics', table: 'lead', recordId: ADA, personId: 1001, fields: ['title'], columns: ['jobtitle'],
    code: '0x80044331', status: 400, activityLogged: true, parkedAt: first, lastRefusedAt: first, attempts: 1
  })

  const later = new Date('2026-12-01T11:00:00Z')
  await store.park([refusal(ADA, { code: '0x80040203', fields: ['phone'], columns: ['telephone1'], activityLogged: false })], later)
  t.match(await store.get(id), { code: '0x80040203', fields: ['title', 'phone'], columns: ['jobtitle', 'telephone1'], activityLogged: false, parkedAt: first, lastRefusedAt: later, attempts: 2 })
  t.equal((await store.list()).length, 1, 'still one entry for the pair')
})

t.test('listed oldest first, filtered by reason, direction, table and age; discarded one by one', async (t) => {
  const store = new ParkedChangeStore(redis, 'p2')
  await store.park([refusal(ADA)], new Date('2026-12-01T10:00:00Z'))
  await store.park([refusal(BOB, { code: 'OPTION_LABEL_UNKNOWN', status: undefined, columns: ['leadsourcecode'], fields: ['leadSource'] })], new Date('2026-12-02T10:00:00Z'))
  await store.park([refusal(CYD, { table: 'contact' })], new Date('2026-12-03T10:00:00Z'))

  t.same((await store.list()).map((entry) => entry.recordId), [ADA, BOB, CYD])
  t.same((await store.list({ code: 'OPTION_LABEL_UNKNOWN' })).map((entry) => entry.recordId), [BOB])
  t.notOk('status' in (await store.list({ code: 'OPTION_LABEL_UNKNOWN' }))[0]!, 'no status when Dynamics was not asked')
  t.same((await store.list({ table: 'contact' })).map((entry) => entry.recordId), [CYD])
  t.same((await store.list({ direction: 'marketo-to-dynamics', parkedBefore: new Date('2026-12-02T10:00:00Z') })).map((entry) => entry.recordId), [ADA], 'older than a moment')
  t.same((await store.list({ limit: 2 })).map((entry) => entry.recordId), [ADA, BOB])

  const bob = parkedChangeId('marketo-to-dynamics', 'lead', BOB)
  t.equal(await store.discard(bob), true)
  t.equal(await store.discard(bob), false, 'gone already')
  t.equal(await store.get(bob), undefined)
  t.same((await store.list()).map((entry) => entry.recordId), [ADA, CYD])
})

t.test('bounded: parking past the cap drops the oldest entries and says how many', async (t) => {
  const store = new ParkedChangeStore(redis, 'p3', { maxEntries: 2 })
  await store.park([refusal(ADA)], new Date('2026-12-01T10:00:00Z'))
  await store.park([refusal(BOB)], new Date('2026-12-02T10:00:00Z'))
  const { dropped } = await store.park([refusal(CYD)], new Date('2026-12-03T10:00:00Z'))
  t.equal(dropped, 1)
  t.same((await store.list()).map((entry) => entry.recordId), [BOB, CYD])
  t.equal(await redis.exists(parkedChangeKeys('p3').entry(parkedChangeId('marketo-to-dynamics', 'lead', ADA))), 0, 'the dropped entry\'s hash is gone too')
})

t.test('a later write clears an entry only when it decided every parked field', async (t) => {
  const store = new ParkedChangeStore(redis, 'p4')
  await store.park([refusal(ADA, { fields: ['title', 'phone'] }), refusal(BOB)])
  const settled = await store.settle([
    { direction: 'marketo-to-dynamics', table: 'lead', recordId: ADA, fields: ['phone'] },
    { direction: 'marketo-to-dynamics', table: 'lead', recordId: BOB, fields: ['title', 'city'] },
    { direction: 'marketo-to-dynamics', table: 'lead', recordId: CYD, fields: ['title'] }
  ])
  t.same(settled, [parkedChangeId('marketo-to-dynamics', 'lead', BOB)])
  t.same((await store.list()).map((entry) => entry.recordId), [ADA], 'the title of Ada is still to deliver')
  await store.settle([{ direction: 'marketo-to-dynamics', table: 'lead', recordId: ADA, fields: ['title', 'phone'] }])
  t.same(await store.list(), [])
  t.same(await redis.zcard(parkedChangeKeys('p4').index), 0)
})

t.test('settlesParkedFields: all parked fields decided, or not', async (t) => {
  t.equal(settlesParkedFields(['title'], ['title', 'phone']), true)
  t.equal(settlesParkedFields(['title', 'phone'], ['phone']), false)
  t.equal(settlesParkedFields([], ['phone']), true)
})

t.test('an id from outside names a parked entry or nothing: no other key is reachable', async (t) => {
  const store = new ParkedChangeStore(redis, 'p5')
  await t.rejects(store.get('{links}:person:1'), { code: 'PARKED_CHANGE_INVALID_ID' })
  await t.rejects(store.discard('marketo-to-dynamics:lead:*'), { code: 'PARKED_CHANGE_INVALID_ID' })
})

t.test('no value or message is stored: only ids, names, codes, dates and counts', async (t) => {
  const store = new ParkedChangeStore(redis, 'p6')
  await store.park([refusal(ADA)])
  const hash = await redis.hgetall(parkedChangeKeys('p6').entry(parkedChangeId('marketo-to-dynamics', 'lead', ADA)))
  t.same(Object.keys(hash).sort(), ['activityLogged', 'attempts', 'code', 'columns', 'direction', 'fields', 'id', 'lastRefusedAt', 'parkedAt', 'personId', 'recordId', 'status', 'table'])
})

t.test('a Dynamics → Marketo record is parked in the same store: its persons (none, one or several), fields, columns and reason code', async (t) => {
  const store = new ParkedChangeStore(redis, 'p7')
  const at = new Date('2026-12-04T10:00:00Z')
  await store.park([
    { direction: 'dynamics-to-marketo', table: 'lead', recordId: ADA, personIds: [], fields: ['email'], columns: ['emailaddress1'], code: 'NO_EMAIL' },
    { direction: 'dynamics-to-marketo', table: 'contact', recordId: BOB, personIds: [7, 8], fields: ['email'], columns: ['emailaddress1'], code: 'SEVERAL_UNLINKED_PERSONS' },
    { direction: 'dynamics-to-marketo', table: 'lead', recordId: CYD, personIds: [9], fields: ['email', 'title'], columns: ['emailaddress1', 'jobtitle'], code: '1003' }
  ], at)
  const ada = parkedChangeId('dynamics-to-marketo', 'lead', ADA)
  t.same(await store.get(ada), { id: ada, direction: 'dynamics-to-marketo', table: 'lead', recordId: ADA, personIds: [], fields: ['email'], columns: ['emailaddress1'], code: 'NO_EMAIL', parkedAt: at, lastRefusedAt: at, attempts: 1 })
  t.match(await store.get(parkedChangeId('dynamics-to-marketo', 'contact', BOB)), { personIds: [7, 8], code: 'SEVERAL_UNLINKED_PERSONS' })
  t.match(await store.get(parkedChangeId('dynamics-to-marketo', 'lead', CYD)), { personIds: [9], fields: ['email', 'title'], code: '1003' })

  await store.park([refusal(ADA)], at)
  t.same((await store.list({ direction: 'dynamics-to-marketo' })).map((entry) => entry.recordId).sort(), [ADA, BOB, CYD], 'one direction listed (parked at one moment)')
  t.same((await store.list({ direction: 'marketo-to-dynamics' })).map((entry) => entry.recordId), [ADA], 'the other direction\'s entry of the same record is its own')

  const later = new Date('2026-12-04T11:00:00Z')
  await store.park([{ direction: 'dynamics-to-marketo', table: 'lead', recordId: CYD, personIds: [9], fields: ['title'], columns: ['jobtitle'], code: '1004' }], later)
  t.match(await store.get(parkedChangeId('dynamics-to-marketo', 'lead', CYD)), { code: '1004', attempts: 2, parkedAt: at, lastRefusedAt: later })

  t.same(await store.settle([{ direction: 'dynamics-to-marketo', table: 'lead', recordId: ADA, fields: ['email', 'title'] }]), [ada], 'a delivery clears the Dynamics → Marketo entry')
  t.ok(await store.get(parkedChangeId('marketo-to-dynamics', 'lead', ADA)), 'and not the other direction\'s')

  const hash = await redis.hgetall(parkedChangeKeys('p7').entry(parkedChangeId('dynamics-to-marketo', 'contact', BOB)))
  t.same(Object.keys(hash).sort(), ['activityLogged', 'attempts', 'code', 'columns', 'direction', 'fields', 'id', 'lastRefusedAt', 'parkedAt', 'personId', 'recordId', 'status', 'table'], 'the same hash layout')
  t.equal(hash.personId, '7,8')
})

t.test('a retry discards an entry only while it is unchanged: a refusal parked meanwhile stays', async (t) => {
  const store = new ParkedChangeStore(redis, 'race')
  await store.park([refusal(ADA, { fields: ['title'], columns: ['jobtitle'] })], new Date(1_000))
  const read = (await store.list())[0]!
  // A pass running beside the retry parks a new refusal of the same record.
  await store.park([refusal(ADA, { fields: ['phone'], columns: ['telephone1'] })], new Date(2_000))
  t.equal(await store.discardIfUnchanged(read), false, 'not discarded: it changed since the retry read it')
  t.match(await store.get(read.id), { fields: ['title', 'phone'] }, 'the newer refusal is still parked')
  const current = (await store.get(read.id))!
  t.equal(await store.discardIfUnchanged(current), true, 'discarded once read as it is')
  t.equal(await store.get(read.id), undefined)
})

t.test('a retry refused again names exactly the fields still refused: the ones it settled go', async (t) => {
  const store = new ParkedChangeStore(redis, 'replace')
  await store.park([refusal(ADA, { fields: ['title', 'phone'], columns: ['jobtitle', 'telephone1'] })], new Date(1_000))
  await store.park([refusal(ADA, { fields: ['phone'], columns: ['telephone1'] })], new Date(2_000), { replaceFields: true })
  t.match((await store.list())[0], { fields: ['phone'], columns: ['telephone1'], attempts: 2 })
  await store.park([refusal(ADA, { fields: ['title'], columns: ['jobtitle'] })], new Date(3_000))
  t.match((await store.list())[0], { fields: ['phone', 'title'], attempts: 3 }, 'a pass still adds to what is parked')
})
