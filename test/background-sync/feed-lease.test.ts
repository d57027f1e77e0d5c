import t from 'tap'
import { Redis } from 'ioredis'
import { startLocalRedis } from '../../sandbox/redis-server.ts'
import { startDataverseEmulator } from '../../sandbox/dataverse/index.ts'
import { CheckpointStore } from '../../src/background-sync/checkpoints.ts'
import { runDynamicsChangePass, type DeliveredPage, type DynamicsChangePassOutcome } from '../../src/background-sync/dynamics-change-pass.ts'
import { FeedHandedBackError, FeedLeases } from '../../src/background-sync/feed-lease.ts'
import { syncFeedLeaseKey } from '../../src/queue/redis-keys.ts'
import { dataverseTestClient } from '../helpers/dataverse-test-client.ts'
import { eventually } from '../helpers/flow-step-harness.ts'

/**
 * One pass per feed at a time, across workers (issue 12 §10): two workers' passes of one table, each
 * on its own Redis connection, on a real Redis against the emulated Dataverse over real HTTP. Time
 * is waited for on Redis' own keyspace events (a lease renewed, a lease expired), never by sleeping.
 */

const redisServer = await startLocalRedis()
const workerA = new Redis(redisServer.url)
const workerB = new Redis(redisServer.url)
const events = new Redis(redisServer.url)
const emulator = await startDataverseEmulator({})
t.teardown(async () => {
  workerA.disconnect()
  workerB.disconnect()
  events.disconnect()
  await emulator.close()
  await redisServer.stop()
})

// E: keyevent channels; g: generic commands (PEXPIRE, and SET … PX emits `expire` too); x: expired.
await workerA.config('SET', 'notify-keyspace-events', 'Egx')
const seen: Array<{ event: string, key: string }> = []
const waiters = new Set<() => void>()
events.on('message', (channel: string, key: string) => {
  seen.push({ event: channel.slice(channel.lastIndexOf(':') + 1), key })
  for (const wake of waiters) wake()
})
await events.subscribe('__keyevent@0__:expire', '__keyevent@0__:expired')

/** Resolves once Redis has reported `event` on `key` `count` times since `from`; fails after 5 s. */
async function keyEvents (event: 'expire' | 'expired', key: string, count: number, from = 0): Promise<void> {
  const enough = (): boolean => seen.slice(from).filter((e) => e.event === event && e.key === key).length >= count
  if (enough()) return
  await new Promise<void>((resolve, reject) => {
    const deadline = setTimeout(() => { waiters.delete(wake); reject(new Error(`no ${count} ${event} events on ${key} within 5 s`)) }, 5_000)
    const wake = (): void => { if (enough()) { clearTimeout(deadline); waiters.delete(wake); resolve() } }
    waiters.add(wake)
  })
}

const client = dataverseTestClient(emulator.url)
const contactsFeed = { direction: 'dynamics-to-marketo', table: 'contact' } as const

let prefixes = 0
/** A fresh key space with two rows to read; each worker has its own connection and lease store. */
function freshFeed (leaseOptions: { ttlMs: number, renewEveryMs?: number } = { ttlMs: 30_000 }) {
  for (const row of emulator.store.scan('contacts')) emulator.store.delete('contacts', String(row.contactid))
  for (const lastname of ['A', 'B']) emulator.store.insert('contacts', { lastname })
  const prefix = `lease-${++prefixes}`
  const pass = (worker: Redis, deliver: (page: DeliveredPage) => Promise<void>): Promise<DynamicsChangePassOutcome> => runDynamicsChangePass({
    client,
    checkpoints: new CheckpointStore(worker, prefix),
    leases: new FeedLeases(worker, prefix, leaseOptions),
    table: 'contact',
    columns: ['lastname'],
    deliver
  })
  return { prefix, pass, leaseKey: syncFeedLeaseKey(prefix, contactsFeed.direction, contactsFeed.table), checkpoints: new CheckpointStore(workerA, prefix) }
}

t.test('two passes of one table started together on two workers: exactly one delivers, the other is skipped and writes nothing', async (t) => {
  const { pass, checkpoints, leaseKey } = freshFeed()
  const delivered: string[] = []
  let skipped!: () => void
  const oneSkipped = new Promise<void>((resolve) => { skipped = resolve })
  // The delivering pass holds its lease until the other has answered, so the two surely overlap.
  const deliver = (worker: string) => async (): Promise<void> => { delivered.push(worker); await oneSkipped }
  const settle = (outcome: DynamicsChangePassOutcome): DynamicsChangePassOutcome => { if (outcome.kind === 'skipped') skipped(); return outcome }
  const outcomes = await Promise.all([pass(workerA, deliver('A')).then(settle), pass(workerB, deliver('B')).then(settle)])

  t.same(outcomes.map((o) => o.kind).sort(), ['advanced', 'skipped'])
  t.match(outcomes.find((o) => o.kind === 'skipped'), { kind: 'skipped', reason: 'another pass is running' })
  t.equal(delivered.length, 1, 'the page delivered once')
  t.match(await checkpoints.load(contactsFeed), { version: 1 }, 'the checkpoint advanced once, by the pass that delivered')
  t.equal(await workerA.exists(leaseKey), 0, 'the lease released after the pass')
})

t.test('a pass longer than the lease TTL keeps renewing it: a second pass is still skipped', async (t) => {
  const { pass, leaseKey } = freshFeed({ ttlMs: 300, renewEveryMs: 100 })
  let release!: () => void
  const held = new Promise<void>((resolve) => { release = resolve })
  let started!: () => void
  const delivering = new Promise<void>((resolve) => { started = resolve })
  const from = seen.length
  const long = pass(workerA, async () => { started(); await held })
  await delivering
  // SET … PX is one `expire` event; four renewals later, 400 ms or more have passed: past the TTL.
  await keyEvents('expire', leaseKey, 5, from)
  t.ok(await workerB.pttl(leaseKey) > 0, 'still held')
  t.match(await pass(workerB, async () => { t.fail('the second pass delivered') }), { kind: 'skipped' })
  release()
  t.match(await long, { kind: 'advanced', version: 1 })
  t.notOk(seen.slice(from).some((e) => e.event === 'expired' && e.key === leaseKey), 'the lease never expired')
})

t.test('a lease whose holder died (never renewed) is taken over after its TTL', async (t) => {
  const { pass, leaseKey, checkpoints } = freshFeed()
  // What a worker killed mid-pass leaves: its lease, taken as FeedLeases takes it, never renewed.
  t.equal(await workerA.set(leaseKey, 'a-dead-workers-token', 'PX', 300, 'NX'), 'OK')
  const from = seen.length
  t.match(await pass(workerB, async () => { t.fail('delivered under a held lease') }), { kind: 'skipped' }, 'held until it expires')
  await keyEvents('expired', leaseKey, 1, from)
  const delivered: DeliveredPage[] = []
  t.match(await pass(workerB, async (page) => { delivered.push(page) }), { kind: 'advanced', version: 1 })
  t.equal(delivered.length, 1, 'the other worker took the feed over')
  t.match(await checkpoints.load(contactsFeed), { version: 1 })
})

t.test('a pass that threw releases its lease at once: the next pass runs without waiting for the TTL', async (t) => {
  const { pass, leaseKey, checkpoints } = freshFeed({ ttlMs: 60_000 })
  const failure = new Error('Marketo unreachable')
  await t.rejects(pass(workerA, async () => { throw failure }), failure)
  t.equal(await workerA.exists(leaseKey), 0, 'released in finally')
  t.match(await checkpoints.load(contactsFeed), { version: 0 }, 'nothing saved by the failed pass')
  t.match(await pass(workerB, async () => {}), { kind: 'advanced', version: 1 })
})

t.test('a pass releases only its own lease: one whose lease expired and was taken leaves the new holder\'s', async (t) => {
  const { prefix, leaseKey } = freshFeed()
  const leases = new FeedLeases(workerA, prefix, { ttlMs: 60_000 })
  const outcome = await leases.run(contactsFeed, async () => {
    // Its lease expired and another worker took the feed over, meanwhile.
    await workerB.set(leaseKey, 'the-new-holders-token', 'PX', 60_000)
    return 'done'
  })
  t.same(outcome, { kind: 'ran', value: 'done' })
  t.equal(await workerA.get(leaseKey), 'the-new-holders-token', 'not deleted by the old holder')
})

t.test('shutdown hands a pass back: one reading its page stops before delivering and frees its lease at once; another worker delivers the page', async (t) => {
  const { prefix, leaseKey, checkpoints, pass } = freshFeed({ ttlMs: 60_000 })
  const leases = new FeedLeases(workerA, prefix, { ttlMs: 60_000 })
  // A slow Dataverse: the page is still being read when the worker's shutdown deadline nears.
  emulator.faults.setLatency(500)
  t.teardown(() => { emulator.faults.setLatency(0) })
  const before = emulator.requestCount({ entitySet: 'contacts' })
  const delivered: string[] = []
  const cutOff = runDynamicsChangePass({
    client,
    checkpoints: new CheckpointStore(workerA, prefix),
    leases,
    table: 'contact',
    columns: ['lastname'],
    deliver: async () => { delivered.push('A') }
  })
  await eventually(() => emulator.requestCount({ entitySet: 'contacts' }) > before || undefined, { timeoutMs: 5_000, intervalMs: 5, what: 'the page read to reach Dataverse' })
  leases.handBack()
  await t.rejects(cutOff, FeedHandedBackError, 'the pass ends as handed back')
  t.same(delivered, [], 'it delivered nothing')
  t.ok(await workerA.exists(leaseKey) === 0, 'its lease is freed, long before its 60 s TTL')
  t.match(await checkpoints.load(contactsFeed), { version: 0 }, 'its cursor was not saved: the page is read again')
  emulator.faults.setLatency(0)
  t.match(await pass(workerB, async () => { delivered.push('B') }), { kind: 'advanced', version: 1 }, 'another worker\'s pass runs at once')
  t.same(delivered, ['B'], 'and delivers the page, once')
})

t.test('after hand-back a worker starts no pass: run() refuses without taking the lease', async (t) => {
  const { prefix, leaseKey } = freshFeed()
  const leases = new FeedLeases(workerA, prefix, { ttlMs: 60_000 })
  leases.handBack()
  leases.handBack()
  let ran = false
  await t.rejects(leases.run(contactsFeed, async () => { ran = true }), { name: 'FeedHandedBackError', code: 'FEED_HANDED_BACK' })
  t.notOk(ran, 'the pass never ran')
  t.equal(await workerA.exists(leaseKey), 0, 'the lease was never taken')
})

t.test('hand-back leaves a pass already delivering to finish: its writes are not cut halfway', async (t) => {
  const { prefix, leaseKey, checkpoints } = freshFeed()
  const leases = new FeedLeases(workerA, prefix, { ttlMs: 60_000 })
  let release!: () => void
  const held = new Promise<void>((resolve) => { release = resolve })
  let started!: () => void
  const delivering = new Promise<void>((resolve) => { started = resolve })
  const running = runDynamicsChangePass({
    client, checkpoints: new CheckpointStore(workerA, prefix), leases, table: 'contact', columns: ['lastname'],
    deliver: async () => { started(); await held }
  })
  await delivering
  leases.handBack()
  release()
  t.match(await running, { kind: 'advanced', version: 1 }, 'the delivering pass saved its cursor')
  t.match(await checkpoints.load(contactsFeed), { version: 1 })
  t.equal(await workerA.exists(leaseKey), 0, 'and freed its lease')
})
