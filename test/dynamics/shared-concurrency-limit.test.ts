import t from 'tap'
import { Redis } from 'ioredis'
import { startLocalRedis } from '../../sandbox/redis-server.ts'
import { startDataverseEmulator } from '../../sandbox/dataverse/index.ts'
import { SharedConcurrencyLimit } from '../../src/dynamics/shared-concurrency-limit.ts'
import { DataverseUnavailableError } from '../../src/dynamics/dataverse-errors.ts'
import { dataverseConcurrencyLeasesKey } from '../../src/queue/redis-keys.ts'
import { dataverseTestClient } from '../helpers/dataverse-test-client.ts'
import { eventually } from '../helpers/flow-step-harness.ts'

/**
 * Dataverse requests in flight bounded across processes (issue 12 §11, reference §5: 52 per user),
 * on a real Redis: each "process" is a limit on its own Redis connection, as each worker has.
 */

const redisServer = await startLocalRedis()
const connections: Redis[] = []
const connect = (): Redis => {
  const connection = new Redis(redisServer.url)
  connections.push(connection)
  return connection
}
t.teardown(async () => {
  for (const connection of connections) connection.disconnect()
  await redisServer.stop()
})

let prefixes = 0
const freshPrefix = (): string => `shared-limit-${++prefixes}`

t.test('two processes\' clients together never have more Dataverse requests in flight than the total', async (t) => {
  const emulator = await startDataverseEmulator({ latencyMs: 20 })
  t.teardown(() => emulator.close())
  const keyPrefix = freshPrefix()
  // Each process alone would allow 8; together they may have 3.
  const clients = [connect(), connect()].map((redis) => dataverseTestClient(emulator.url, {
    maxConcurrentRequests: 8,
    sharedLimit: new SharedConcurrencyLimit(redis, { keyPrefix, maxConcurrent: 3 })
  }))
  emulator.resetPeakConcurrency()
  const answers = await Promise.all(clients.flatMap((client) => Array.from({ length: 12 }, async () => await client.whoAmI())))
  t.equal(answers.length, 24, 'every request answered')
  t.equal(emulator.peakConcurrency(), 3, 'at most 3 at once at Dataverse, and the limit was used')
  t.equal(await connections[0]!.zcard(dataverseConcurrencyLeasesKey(keyPrefix)), 0, 'every slot given back')
})

t.test('without the shared limit the same two clients exceed it: the test can fail', async (t) => {
  const emulator = await startDataverseEmulator({ latencyMs: 20 })
  t.teardown(() => emulator.close())
  const clients = [dataverseTestClient(emulator.url, { maxConcurrentRequests: 8 }), dataverseTestClient(emulator.url, { maxConcurrentRequests: 8 })]
  emulator.resetPeakConcurrency()
  await Promise.all(clients.flatMap((client) => Array.from({ length: 12 }, async () => await client.whoAmI())))
  t.ok(emulator.peakConcurrency() > 3, `${emulator.peakConcurrency()} at once`)
})

t.test('a crashed holder\'s slots come back once their leases run out, not before', async (t) => {
  const keyPrefix = freshPrefix()
  const crashing = connect()
  const crashed = new SharedConcurrencyLimit(crashing, { keyPrefix, maxConcurrent: 2, leaseMs: 600 })
  // Two requests that never end, then the process dies: its Redis connection goes, renewals stop.
  let holding = 0
  for (let i = 0; i < 2; i++) void crashed.run(async () => { holding++; await new Promise(() => {}) })
  await eventually(() => holding === 2 ? true : undefined, { what: 'both slots taken' })
  crashing.disconnect()

  const survivor = new SharedConcurrencyLimit(connect(), { keyPrefix, maxConcurrent: 2, leaseMs: 600, maxWaitMs: 5_000 })
  const startedAt = Date.now()
  let ran = false
  await survivor.run(async () => { ran = true })
  const waited = Date.now() - startedAt
  t.ok(ran, 'the survivor\'s request ran')
  t.ok(waited >= 300, `it waited for the dead holder's leases (${waited} ms)`)
  t.ok(waited < 3_000, 'and got a slot soon after they ran out')
})

t.test('a live holder keeps its slot past the lease by renewing it; a waiter that waits too long is not sent', async (t) => {
  const keyPrefix = freshPrefix()
  const holder = new SharedConcurrencyLimit(connect(), { keyPrefix, maxConcurrent: 1, leaseMs: 300 })
  let release!: () => void
  const held = holder.run(async () => await new Promise<void>((resolve) => { release = resolve }))
  await eventually(async () => await connections[connections.length - 1]!.zcard(dataverseConcurrencyLeasesKey(keyPrefix)) === 1 ? true : undefined, { what: 'the slot taken' })

  const waiter = new SharedConcurrencyLimit(connect(), { keyPrefix, maxConcurrent: 1, leaseMs: 300, maxWaitMs: 900 })
  let sent = false
  const error = await waiter.run(async () => { sent = true }).catch((e: unknown) => e)
  t.type(error, DataverseUnavailableError, 'three leases long: the renewed slot was never free')
  t.match(error, { code: 'DYNAMICS_UNAVAILABLE' })
  t.notOk(sent)
  release()
  await held
  await waiter.run(async () => { sent = true })
  t.ok(sent, 'free once the holder is done')
})

t.test('a 429 is still waited out for Retry-After through the shared limit, and its slot is not held meanwhile', async (t) => {
  const emulator = await startDataverseEmulator()
  t.teardown(() => emulator.close())
  const keyPrefix = freshPrefix()
  const redis = connect()
  const client = dataverseTestClient(emulator.url, { sharedLimit: new SharedConcurrencyLimit(redis, { keyPrefix, maxConcurrent: 1 }) })
  emulator.faults.throttleNext(1, 1)
  const before = emulator.requestCount({ entitySet: 'WhoAmI' })
  const startedAt = Date.now()
  const pending = client.whoAmI()
  await eventually(() => emulator.requestCount({ entitySet: 'WhoAmI' }) > before ? true : undefined, { what: 'the throttled request' })
  // Waiting out Retry-After (1 s), the request holds no shared slot: another process may send.
  t.equal(await eventually(async () => await redis.zcard(dataverseConcurrencyLeasesKey(keyPrefix)) === 0 ? 0 : undefined, { what: 'the slot back during the wait' }), 0)
  t.match(await pending, /^[0-9a-f-]{36}$/)
  t.ok(Date.now() - startedAt >= 900, 'Retry-After honoured')
  t.equal(emulator.requestCount({ entitySet: 'WhoAmI' }) - before, 2, 'sent again once')
})
