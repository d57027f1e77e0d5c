import t from 'tap'
import { Redis } from 'ioredis'
import { startLocalRedis } from '../../sandbox/redis-server.ts'
import { startDataverseEmulator } from '../../sandbox/dataverse/index.ts'
import { CheckpointStore } from '../../src/background-sync/checkpoints.ts'
import { runDynamicsChangePass, type DeliveredPage, type DynamicsChangePassOutcome } from '../../src/background-sync/dynamics-change-pass.ts'
import { FeedLeases } from '../../src/background-sync/feed-lease.ts'
import { decodeWatermarkCursor, isWatermarkCursor } from '../../src/dynamics/table-watermark-read.ts'
import { dataverseTestClient } from '../helpers/dataverse-test-client.ts'

/**
 * A contacts table whose change tracking is off (issue 12 §1): the change pass switches its
 * checkpoint to a `modifiedon` watermark and reads on from there, durably, on a real Redis against
 * the emulated Dataverse over real HTTP.
 */

const redisServer = await startLocalRedis()
const redis = new Redis(redisServer.url)
const emulator = await startDataverseEmulator({ changeTracking: { disabledFor: ['contacts'] } })
t.teardown(async () => {
  redis.disconnect()
  await emulator.close()
  await redisServer.stop()
})

const client = dataverseTestClient(emulator.url)
const contactsCheckpoint = { direction: 'dynamics-to-marketo', table: 'contact' } as const

let prefixes = 0
function freshRun (columns: readonly string[] = ['lastname']) {
  for (const row of emulator.store.scan('contacts')) emulator.store.delete('contacts', String(row.contactid))
  const prefix = `watermark-pass-${++prefixes}`
  const checkpoints = new CheckpointStore(redis, prefix)
  const leases = new FeedLeases(redis, prefix, { ttlMs: 30_000 })
  const delivered: DeliveredPage[] = []
  /** The clock the tracking recheck is timed by: a test moves it on instead of waiting an hour. */
  const clock = { now: new Date() }
  const pass = async (deliver = async (page: DeliveredPage) => { delivered.push(page) }, passColumns = columns) =>
    await runDynamicsChangePass({ client, checkpoints, leases, table: 'contact', columns: passColumns, pageSize: 2, deliver, now: () => clock.now })
  /** Passes until one is caught up (as a pass job does); answers them all. */
  const passUntilCaughtUp = async (): Promise<DynamicsChangePassOutcome[]> => {
    const outcomes: DynamicsChangePassOutcome[] = []
    for (;;) {
      const outcome = await pass()
      outcomes.push(outcome)
      if (outcome.kind === 'advanced' && outcome.caughtUp) return outcomes
      if (outcomes.length > 20) throw new Error('the passes do not catch up')
    }
  }
  return { checkpoints, delivered, pass, passUntilCaughtUp, clock }
}

const names = (pages: readonly DeliveredPage[]): string[] => pages.flatMap((page) => page.upserted.map((row) => String(row.columns.lastname)))

t.test('change tracking off: the checkpoint switches to a modifiedon watermark, and every row arrives once though many share one second across pages', async (t) => {
  const { checkpoints, delivered, pass, passUntilCaughtUp } = freshRun()
  const second = '2024-05-01T08:00:00Z'
  for (const lastname of ['A', 'B', 'C', 'D', 'E']) emulator.store.insert('contacts', { lastname, modifiedon: second })

  // The tracked read's first page comes without Preference-Applied: odata.track-changes (reference §1.2, §2).
  const requestsBefore = emulator.requestCount({ method: 'GET', entitySet: 'contacts' })
  t.match(await pass(), { kind: 'reset', reason: 'change-tracking-off' }, 'the first page tells')
  t.same(delivered, [], 'and its rows are not handed on')
  const switched = await checkpoints.load(contactsCheckpoint)
  t.ok(switched.cursor !== undefined && isWatermarkCursor(switched.cursor), 'the checkpoint holds a watermark')

  const outcomes = await passUntilCaughtUp()
  t.same(outcomes.map((o) => o.kind === 'advanced' ? o.upserted : -1), [2, 2, 1], 'two rows a page')
  t.same(names(delivered).sort(), ['A', 'B', 'C', 'D', 'E'], 'each row once')
  t.equal(emulator.requestCount({ method: 'GET', entitySet: 'contacts' }) - requestsBefore, 1 + 3, 'the table read once: one first page, then the three watermark pages (no tracked read to its end first, no recheck)')
  t.ok(delivered.every((page) => page.deletedIds.length === 0), 'a watermark sees no deletes')

  delivered.length = 0
  t.match(await pass(), { kind: 'advanced', caughtUp: true, upserted: 0 }, 'a quiet table: nothing read again')
  const id = String(emulator.store.scan('contacts')[0]?.contactid)
  emulator.store.update('contacts', id, { lastname: 'Edited' })
  const created = emulator.store.insert('contacts', { lastname: 'Created' })
  emulator.store.delete('contacts', created)
  emulator.store.insert('contacts', { lastname: 'New' })
  await passUntilCaughtUp()
  t.same(names(delivered).sort(), ['Edited', 'New'], 'the edit and the new row arrive; the deleted row is gone unseen')
  t.ok(isWatermarkCursor((await checkpoints.load(contactsCheckpoint)).cursor ?? ''), 'still on the watermark')
})

t.test('a delivery that fails leaves the watermark where it was, and the page is read again', async (t) => {
  const { checkpoints, delivered, pass, passUntilCaughtUp } = freshRun()
  for (const lastname of ['A', 'B', 'C']) emulator.store.insert('contacts', { lastname, modifiedon: '2024-05-01T08:00:00Z' })
  let outcome = await pass()
  while (outcome.kind === 'advanced') outcome = await pass()
  delivered.length = 0
  t.match(await pass(), { kind: 'advanced', caughtUp: false, upserted: 2 })
  const saved = await checkpoints.load(contactsCheckpoint)
  let refused: string[] = []
  await t.rejects(pass(async (page) => { refused = names([page]); throw new Error('Marketo is down') }))
  t.same(await checkpoints.load(contactsCheckpoint), saved, 'the watermark stays')
  t.equal(refused.length, 1)
  await passUntilCaughtUp()
  t.same(names(delivered.slice(1)), refused, 'the refused page is read again')
  t.same(names(delivered).sort(), ['A', 'B', 'C'], 'and nothing else twice')
})

t.test('a mapping that selects other columns starts a new watermark scan, not a tracked read, so the new field arrives', async (t) => {
  const { checkpoints, delivered, pass, passUntilCaughtUp } = freshRun()
  emulator.store.insert('contacts', { lastname: 'Only', jobtitle: 'Engineer', modifiedon: '2024-05-01T08:00:00Z' })
  let outcome = await pass()
  while (outcome.kind === 'advanced') outcome = await pass()
  await passUntilCaughtUp()
  const before = emulator.requestCount({ method: 'GET', entitySet: 'contacts' })
  t.match(await pass(undefined, ['lastname', 'jobtitle']), { kind: 'reset', reason: 'columns-changed' })
  t.ok(isWatermarkCursor((await checkpoints.load(contactsCheckpoint)).cursor ?? ''), 'a fresh watermark')
  delivered.length = 0
  t.match(await pass(undefined, ['lastname', 'jobtitle']), { kind: 'advanced', caughtUp: true, upserted: 1 })
  t.same(delivered[0]?.upserted[0]?.columns, { lastname: 'Only', jobtitle: 'Engineer' })
  t.equal(emulator.requestCount({ method: 'GET', entitySet: 'contacts' }) - before, 1, 'the cursor itself says the columns changed; one read follows, no tracked full read first')
})

t.test('change tracking turned on later: within the hour nothing is asked; after it, one request finds it on and a tracked full read takes over, missing nothing written during the switch, and later edits and deletes come through change tracking', async (t) => {
  const { checkpoints, delivered, pass, passUntilCaughtUp, clock } = freshRun()
  t.teardown(() => { emulator.changeTracking.setTracked('contacts', false) })
  const ids = ['A', 'B', 'C'].map((lastname) => emulator.store.insert('contacts', { lastname, modifiedon: '2024-05-01T08:00:00Z' }))
  t.match(await pass(), { kind: 'reset', reason: 'change-tracking-off' })
  await passUntilCaughtUp()
  t.same(names(delivered).sort(), ['A', 'B', 'C'])
  delivered.length = 0

  emulator.changeTracking.setTracked('contacts', true)
  const minutes = (count: number) => { clock.now = new Date(clock.now.getTime() + count * 60_000) }
  minutes(59)
  let requests = emulator.requestCount({ method: 'GET', entitySet: 'contacts' })
  t.match(await pass(), { kind: 'advanced', caughtUp: true, upserted: 0 }, 'within the hour: the watermark reads on')
  t.equal(emulator.requestCount({ method: 'GET', entitySet: 'contacts' }) - requests, 1, 'and asks nothing more')

  emulator.store.update('contacts', ids[0]!, { lastname: 'Edited before the check' })
  minutes(2)
  requests = emulator.requestCount({ method: 'GET', entitySet: 'contacts' })
  t.match(await pass(), { kind: 'reset', reason: 'change-tracking-on' }, 'an hour on: tracking is found on')
  t.equal(emulator.requestCount({ method: 'GET', entitySet: 'contacts' }) - requests, 1, 'by one request')
  t.equal((await checkpoints.load(contactsCheckpoint)).cursor, undefined, 'the checkpoint reset: the next pass starts a tracked full read')

  emulator.store.insert('contacts', { lastname: 'Created before the full read' })
  t.match(await pass(), { kind: 'advanced', caughtUp: false, upserted: 2 }, 'the full read\'s first page')
  emulator.store.update('contacts', ids[1]!, { lastname: 'Edited during the full read' })
  await passUntilCaughtUp()
  const tracked = (await checkpoints.load(contactsCheckpoint)).cursor ?? ''
  t.notOk(isWatermarkCursor(tracked), 'off the watermark')
  t.match(tracked, /\$deltatoken=/, 'on a delta link')
  const seen = names(delivered)
  for (const lastname of ['Edited before the check', 'Created before the full read', 'C']) t.ok(seen.includes(lastname), `${lastname}: arrived with the full read`)
  delivered.length = 0
  await passUntilCaughtUp()
  t.same(names(delivered), ['Edited during the full read'], 'an edit made while the full read paged: the first delta read answers it')

  delivered.length = 0
  emulator.store.update('contacts', ids[0]!, { lastname: 'Edited after the switch' })
  emulator.store.delete('contacts', ids[2]!)
  await passUntilCaughtUp()
  t.same(names(delivered), ['Edited after the switch'], 'the edit through the delta link')
  t.same(delivered.flatMap((page) => page.deletedIds), [ids[2]], 'and the delete, which a watermark never sees')
})

t.test('a watermark saved before the recheck existed is asked about at once, and reads on in the same pass while tracking is still off', async (t) => {
  const { checkpoints, delivered, pass, clock } = freshRun()
  emulator.store.insert('contacts', { lastname: 'Old', modifiedon: '2024-05-01T08:00:00Z' })
  const legacy = JSON.stringify({ watermark: 'modifiedon', select: ['contactid', 'lastname', 'modifiedon', '_modifiedby_value'], settled: null, readThrough: null })
  await checkpoints.save(contactsCheckpoint, 0, legacy)
  const requests = emulator.requestCount({ method: 'GET', entitySet: 'contacts' })
  t.match(await pass(), { kind: 'advanced', caughtUp: true, upserted: 1 })
  t.equal(emulator.requestCount({ method: 'GET', entitySet: 'contacts' }) - requests, 2, 'the check, then the watermark page')
  t.same(names(delivered), ['Old'])
  t.equal(decodeWatermarkCursor((await checkpoints.load(contactsCheckpoint)).cursor ?? '').trackingCheckedAt, clock.now.toISOString(), 'the check is saved with the cursor: the next one is an hour away')
  const again = emulator.requestCount({ method: 'GET', entitySet: 'contacts' })
  await pass()
  t.equal(emulator.requestCount({ method: 'GET', entitySet: 'contacts' }) - again, 1, 'no check on the next pass')
})
