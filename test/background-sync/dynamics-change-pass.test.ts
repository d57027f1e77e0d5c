import t from 'tap'
import { Redis } from 'ioredis'
import { startLocalRedis } from '../../sandbox/redis-server.ts'
import { startDataverseEmulator } from '../../sandbox/dataverse/index.ts'
import { CheckpointConflictError, CheckpointStore } from '../../src/background-sync/checkpoints.ts'
import { runDynamicsChangePass, type DeliveredPage } from '../../src/background-sync/dynamics-change-pass.ts'
import { FeedLeases } from '../../src/background-sync/feed-lease.ts'
import { dataverseTestClient } from '../helpers/dataverse-test-client.ts'

/**
 * Reading Dynamics' changes durably (issue 12 §10): the cursor advances only after a page is
 * delivered, on a real Redis against the emulated Dataverse over real HTTP.
 */

const redisServer = await startLocalRedis()
const redis = new Redis(redisServer.url)
const emulator = await startDataverseEmulator({})
t.teardown(async () => {
  redis.disconnect()
  await emulator.close()
  await redisServer.stop()
})

const client = dataverseTestClient(emulator.url)

let prefixes = 0
/** A fresh checkpoint space and a table emptied of earlier tests' rows. */
function freshRun (): { checkpoints: CheckpointStore, delivered: DeliveredPage[], pass: (deliver?: (page: DeliveredPage) => Promise<void>, leases?: FeedLeases) => ReturnType<typeof runDynamicsChangePass> } {
  for (const row of emulator.store.scan('contacts')) emulator.store.delete('contacts', String(row.contactid))
  const prefix = `pass-${++prefixes}`
  const checkpoints = new CheckpointStore(redis, prefix)
  const feedLeases = new FeedLeases(redis, prefix, { ttlMs: 30_000 })
  const delivered: DeliveredPage[] = []
  const collect = async (page: DeliveredPage): Promise<void> => { delivered.push(page) }
  return {
    checkpoints,
    delivered,
    pass: async (deliver = collect, leases = feedLeases) => await runDynamicsChangePass({ client, checkpoints, leases, table: 'contact', columns: ['lastname'], pageSize: 2, deliver })
  }
}

const contactsCheckpoint = { direction: 'dynamics-to-marketo', table: 'contact' } as const
const names = (page: DeliveredPage | undefined): unknown[] => page?.upserted.map((row) => row.columns.lastname) ?? []

t.test('a reader killed between reading a page and saving resumes from the last saved cursor and sees that page again', async (t) => {
  const { checkpoints, delivered, pass } = freshRun()
  for (const lastname of ['A', 'B', 'C', 'D', 'E']) emulator.store.insert('contacts', { lastname })

  t.match(await pass(), { kind: 'advanced', version: 1, caughtUp: false, upserted: 2 })
  const saved = await checkpoints.load(contactsCheckpoint)

  // Killed after reading page 2 and before its changes were delivered: nothing is saved.
  const killed = new Error('killed mid-page')
  await t.rejects(pass(async () => { throw killed }), killed)
  t.same(await checkpoints.load(contactsCheckpoint), saved, 'the checkpoint still points at page 2')

  // Killed after delivering page 2 and before saving: simulated by delivering and not saving.
  const secondRead = await pass(async (page) => { delivered.push(page); throw new Error('killed before the save') }).catch(() => undefined)
  t.equal(secondRead, undefined)
  t.same(await checkpoints.load(contactsCheckpoint), saved, 'still page 2')

  let outcome = await pass()
  while (outcome.kind === 'advanced' && !outcome.caughtUp) outcome = await pass()
  t.same(delivered.map(names), [['A', 'B'], ['C', 'D'], ['C', 'D'], ['E']], 'page 2 delivered again, nothing skipped')
  t.match(await checkpoints.load(contactsCheckpoint), { version: 3, cursor: /\$deltatoken=/ }, 'caught up on the delta link')
})

t.test('after the full read, the next passes deliver exactly the create, the update and the delete', async (t) => {
  const { checkpoints, delivered, pass } = freshRun()
  const kept = emulator.store.insert('contacts', { lastname: 'Kept' })
  const edited = emulator.store.insert('contacts', { lastname: 'Before' })
  const removed = emulator.store.insert('contacts', { lastname: 'Removed' })
  let outcome = await pass()
  while (outcome.kind === 'advanced' && !outcome.caughtUp) outcome = await pass()
  delivered.length = 0

  t.match(await pass(), { kind: 'advanced', caughtUp: true, upserted: 0, deleted: 0 }, 'a quiet table: an empty page')
  emulator.store.update('contacts', edited, { lastname: 'After' })
  const created = emulator.store.insert('contacts', { lastname: 'Created' })
  emulator.store.delete('contacts', removed)
  do outcome = await pass(); while (outcome.kind === 'advanced' && !outcome.caughtUp)
  t.same(delivered.flatMap((page) => page.upserted.map((row) => [row.id, row.columns.lastname])), [[edited, 'After'], [created, 'Created']])
  t.same(delivered.flatMap((page) => page.deletedIds), [removed])
  t.notOk(delivered.some((page) => page.upserted.some((row) => row.id === kept)), 'an untouched row is not delivered')
  t.match(await checkpoints.load(contactsCheckpoint), { cursor: /\$deltatoken=/ })
})

t.test('an expired delta token resets the checkpoint, and the next pass is a full read of every row', async (t) => {
  const { checkpoints, delivered, pass } = freshRun()
  emulator.store.insert('contacts', { lastname: 'Only' })
  t.match(await pass(), { kind: 'advanced', caughtUp: true, version: 1 })
  emulator.changeTracking.expireTokens()
  t.same(await pass(), { kind: 'reset', reason: 'delta-token-expired', version: 2 })
  t.same(await checkpoints.load(contactsCheckpoint).then((checkpoint) => checkpoint.cursor), undefined)
  t.match(await pass(), { kind: 'advanced', caughtUp: true, version: 3, upserted: 1 })
  t.same(delivered.map(names), [['Only'], ['Only']], 'the row delivered again by the full read')
})

t.test('two runners on the same page (a lease lost to a pause): one saves, the other is refused and advances nothing', async (t) => {
  const { checkpoints, pass } = freshRun()
  // The feed's lease lets only one runner in (feed-lease.test.ts); this is the checkpoint backstop
  // for a runner whose lease expired under it, simulated by a lease space of its own.
  const expiredLease = new FeedLeases(redis, `pass-${prefixes}-expired`, { ttlMs: 30_000 })
  for (const lastname of ['A', 'B', 'C']) emulator.store.insert('contacts', { lastname })
  // Both have read the first page; the first to deliver saves, the second's save is stale.
  let releaseFirst!: () => void
  const firstHolds = new Promise<void>((resolve) => { releaseFirst = resolve })
  let firstRead!: () => void
  const firstHasRead = new Promise<void>((resolve) => { firstRead = resolve })
  const slow = pass(async () => { firstRead(); await firstHolds })
  await firstHasRead
  t.match(await pass(undefined, expiredLease), { kind: 'advanced', version: 1 })
  releaseFirst()
  await t.rejects(slow, CheckpointConflictError)
  t.match(await checkpoints.load(contactsCheckpoint), { version: 1 }, 'advanced once')
})
