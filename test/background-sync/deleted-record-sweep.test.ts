import t from 'tap'
import pino from 'pino'
import { Redis } from 'ioredis'
import { startLocalRedis } from '../../sandbox/redis-server.ts'
import { startDataverseEmulator } from '../../sandbox/dataverse/index.ts'
import { CheckpointStore } from '../../src/background-sync/checkpoints.ts'
import { DeletedRecordSweep, type DeliverDeletedRecords, type SweepStepOutcome } from '../../src/background-sync/deleted-record-sweep.ts'
import type { DynamicsChangePassOutcome } from '../../src/background-sync/dynamics-change-pass.ts'
import { FeedLeases } from '../../src/background-sync/feed-lease.ts'
import { initialWatermarkCursor } from '../../src/dynamics/table-watermark-read.ts'
import { RecordLinkStore } from '../../src/links/record-link-store.ts'
import { syncDeletedRecordSweepKey } from '../../src/queue/redis-keys.ts'
import { dataverseTestClient } from '../helpers/dataverse-test-client.ts'

/**
 * The sweep for deletes change tracking cannot show (issue 12 §1, §7), on a real Redis (its links
 * walked by SCAN, its cursor saved there) against the emulated Dataverse over real HTTP. What the
 * delivery does with a missing record is proven with the running worker
 * (deleted-record-sweep-worker.test.ts); here `deliver` records the ids it is handed.
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
const caughtUp: DynamicsChangePassOutcome = { kind: 'advanced', version: 3, caughtUp: true, upserted: 0, deleted: 0 }
const leadReads = () => emulator.requestCount({ method: 'GET', entitySet: 'leads' })

let prefixes = 0
/** A fresh key space with `count` leads in Dataverse, each linked to a person; the leads of earlier tests are gone. */
async function linkedLeads (count: number): Promise<{ prefix: string, leadIds: string[], sweep: (options?: { now?: () => number }) => DeletedRecordSweep }> {
  for (const row of emulator.store.scan('leads')) emulator.store.delete('leads', String(row.leadid))
  const prefix = `sweep-${++prefixes}`
  const links = new RecordLinkStore(redis, prefix)
  const leadIds: string[] = []
  for (let n = 0; n < count; n++) {
    const id = emulator.store.insert('leads', { lastname: `Lead ${n}` })
    await links.set(1_000 + n, { type: 'Lead', id })
    leadIds.push(id)
  }
  // Keys that are not lead links, among which the walk finds its way: contacts' links and a person's end.
  await links.set(9_999, { type: 'Contact', id: '00000000-0000-4000-8000-000000000001' })
  const checkpoints = new CheckpointStore(redis, prefix)
  const leases = new FeedLeases(redis, prefix, { ttlMs: 30_000 })
  return {
    prefix,
    leadIds,
    sweep: (options = {}) => new DeletedRecordSweep({ redis, prefix, dataverse: client, checkpoints, leases, intervalMs: 60_000, logger: pino({ level: 'silent' }), linksPerStep: 25, scanCount: 10, ...options })
  }
}

function recording (): { deliver: DeliverDeletedRecords, delivered: string[], calls: () => number } {
  const delivered: string[] = []
  let calls = 0
  return {
    delivered,
    calls: () => calls,
    deliver: async (table, ids) => {
      t.equal(table, 'lead')
      calls++
      delivered.push(...ids)
      return { flaggedDeleted: ids.length }
    }
  }
}

/** Steps until the sweep is over; every step's outcome. */
async function sweepToTheEnd (sweep: DeletedRecordSweep, deliver: DeliverDeletedRecords): Promise<SweepStepOutcome[]> {
  const steps: SweepStepOutcome[] = []
  for (let n = 0; n < 100; n++) {
    const step = await sweep.afterPasses('lead', caughtUp, deliver)
    if (step === undefined) throw new Error('the sweep stopped before its end')
    steps.push(step)
    if (step.done) return steps
  }
  throw new Error('the sweep did not end in 100 steps')
}

t.test('after an expired delta link and the full read, every linked lead deleted meanwhile is handed to the delivery, the others not', async (t) => {
  const { leadIds, sweep: newSweep } = await linkedLeads(60)
  const deleted = leadIds.filter((_, n) => n % 7 === 3)
  for (const id of deleted) emulator.store.delete('leads', id)
  const sweep = newSweep()
  const { deliver, delivered } = recording()

  await sweep.awaitFullRead('lead')
  t.equal(await sweep.afterPasses('lead', { ...caughtUp, caughtUp: false }, deliver), undefined, 'nothing while the full read goes on')
  const steps = await sweepToTheEnd(sweep, deliver)
  t.ok(steps.length > 1, `bounded steps (${steps.length})`)
  t.ok(steps.every((step) => step.reason === 'delta-token-expired'))
  t.same([...delivered].sort(), [...deleted].sort(), 'exactly the deleted leads')
  t.equal(steps.reduce((sum, step) => sum + step.checked, 0), 60, 'each lead link looked up once; the contact link not at all')

  const reads = leadReads()
  t.equal(await sweep.afterPasses('lead', caughtUp, deliver), undefined, 'once over, the next caught-up pass sweeps nothing')
  t.equal(leadReads(), reads, 'and asks Dataverse nothing')
})

t.test('a sweep with nothing missing hands nothing to the delivery (no Marketo call), at one Dataverse request per 50 links', async (t) => {
  const { sweep: newSweep } = await linkedLeads(120)
  const sweep = newSweep()
  const { deliver, calls } = recording()
  await sweep.awaitFullRead('lead')
  const reads = leadReads()
  const steps = await sweepToTheEnd(sweep, deliver)
  t.equal(calls(), 0, 'the delivery was never called')
  t.equal(steps.reduce((sum, step) => sum + step.checked, 0), 120)
  t.equal(leadReads() - reads, steps.reduce((sum, step) => sum + Math.ceil(step.checked / 50), 0), 'one $filter request per 50 ids of each step')
})

t.test('a sweep interrupted midway resumes from its cursor in another worker, without walking the links it had done again', async (t) => {
  const { prefix, leadIds, sweep: newSweep } = await linkedLeads(100)
  const deleted = leadIds.filter((_, n) => n % 2 === 0)
  for (const id of deleted) emulator.store.delete('leads', id)
  const first = newSweep()
  const { deliver, delivered } = recording()

  await first.awaitFullRead('lead')
  const firstStep = await first.afterPasses('lead', caughtUp, deliver)
  t.match(firstStep, { done: false })
  const cursor = (await first.load('lead')).running?.scanCursor
  t.not(cursor, '0', 'the cursor moved past the first step')

  // The worker dies while Marketo is written: the step's cursor is not saved.
  const killed = new Error('killed while delivering')
  await t.rejects(first.afterPasses('lead', caughtUp, async () => { throw killed }), killed)
  t.equal((await first.load('lead')).running?.scanCursor, cursor, 'the cursor is still the first step\'s')

  // Another worker goes on from there, whatever its own pass did.
  const second = newSweep()
  const rest = await sweepToTheEnd(second, deliver)
  t.equal(firstStep!.checked + rest.reduce((sum, step) => sum + step.checked, 0), 100, 'no link looked up twice after the resume, none left out')
  t.same([...new Set(delivered)].sort(), [...deleted].sort(), 'every deleted lead delivered')
  t.same(Object.keys(await redis.hgetall(syncDeletedRecordSweepKey(prefix, 'lead'))).sort(), ['lastCompletedAt', 'lastStartedAt'], 'over: times only, no cursor, nothing awaited')
})

t.test('a table read by modifiedon is swept at its first pass, then not again before the interval', async (t) => {
  const { prefix, leadIds, sweep: newSweep } = await linkedLeads(10)
  await new CheckpointStore(redis, prefix).save({ direction: 'dynamics-to-marketo', table: 'lead' }, 0, initialWatermarkCursor('lead', ['lastname']))
  let now = 1_000_000
  const sweep = newSweep({ now: () => now })
  const { deliver, delivered } = recording()

  const steps = await sweepToTheEnd(sweep, deliver)
  t.ok(steps.every((step) => step.reason === 'watermark-period'))
  t.equal(steps.reduce((sum, step) => sum + step.checked, 0), 10)
  t.same(delivered, [], 'nothing missing')
  emulator.store.delete('leads', leadIds[4]!)
  now += 59_999
  t.equal(await sweep.afterPasses('lead', caughtUp, deliver), undefined, 'within the interval: nothing')
  now += 1
  const next = await sweepToTheEnd(sweep, deliver)
  t.equal(next.reduce((sum, step) => sum + step.flagged, 0), 1, 'the next sweep, an interval later, flags the deleted lead')
  t.same(delivered, [leadIds[4]])
})

t.test('a sweep step waits while a pass of the table holds its lease', async (t) => {
  const { prefix, sweep: newSweep } = await linkedLeads(5)
  const sweep = newSweep()
  const { deliver } = recording()
  await sweep.awaitFullRead('lead')
  const held = await new FeedLeases(redis, prefix, { ttlMs: 30_000 }).run({ direction: 'dynamics-to-marketo', table: 'lead' }, async () =>
    await sweep.afterPasses('lead', caughtUp, deliver))
  t.same(held, { kind: 'ran', value: undefined }, 'no step while the lease is held elsewhere')
  t.match(await sweep.load('lead'), { awaitingFullRead: true, running: undefined }, 'still due')
  t.equal((await sweepToTheEnd(sweep, deliver)).reduce((sum, step) => sum + step.checked, 0), 5, 'once the lease is free, the sweep runs')
})
