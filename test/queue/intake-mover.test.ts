import t, { type Test } from 'tap'
import { Writable } from 'node:stream'
import pino from 'pino'
import { Queue } from 'bullmq'
import { Redis } from 'ioredis'
import { startLocalRedis } from '../../sandbox/redis-server.ts'
import { decodeIntakeEntry, FlowStepIntake, flowStepIntakeKeys, IntakeUnavailableError, type IntakeEntry } from '../../src/queue/flow-step-intake.ts'
import { byteBoundedBatches, IntakeMover, type IntakeMoverOptions } from '../../src/queue/intake-mover.ts'
import { FLOW_STEP_JOB_NAME, QUEUE } from '../../src/queue/names.ts'
import { queuePrefix } from '../../src/queue/redis-keys.ts'
import type { FlowCallbackJobData, FlowStepJobData } from '../../src/queue/payloads.ts'
import { eventually } from '../helpers/flow-step-harness.ts'

/**
 * The intake between API and workers, on a real Redis and real BullMQ: what the API appends
 * becomes exactly one flow-step job with the API's id and priority, whatever happens to the
 * movers in between, and an entry that cannot be a job is parked with its reason, never dropped.
 */

const redisServer = await startLocalRedis()
const redis = new Redis(redisServer.url, { maxRetriesPerRequest: null })
t.teardown(async () => {
  redis.disconnect()
  await redisServer.stop()
})

let prefixes = 0
function setup (t: Test, { claimIdleMs = 60_000 } = {}) {
  const prefix = `intake-${++prefixes}`
  const keys = flowStepIntakeKeys(prefix)
  const intake = new FlowStepIntake({ redis, keys, timeoutMs: 2_000 })
  const queueConnection = new Redis(redisServer.url, { maxRetriesPerRequest: null })
  const queue = new Queue<FlowStepJobData>(QUEUE.flowStep, { connection: queueConnection, prefix: queuePrefix(prefix, QUEUE.flowStep) })
  const callbackQueue = new Queue<FlowCallbackJobData>(QUEUE.flowStepCallback, { connection: queueConnection, prefix: queuePrefix(prefix, QUEUE.flowStepCallback) })
  const logLines: Array<Record<string, unknown>> = []
  const logger = pino({ level: 'debug' }, new Writable({ write (chunk: Buffer, _encoding, done) { logLines.push(...chunk.toString().split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>)); done() } }))
  const movers: IntakeMover[] = []
  const startMover = (options: Partial<IntakeMoverOptions> = {}) => {
    const mover = new IntakeMover({ redis: new Redis(redisServer.url, { maxRetriesPerRequest: null }), queue, callbackQueue, keys, logger, claimIdleMs, blockMs: 200, ...options })
    movers.push(mover)
    mover.start()
    return mover
  }
  t.teardown(async () => {
    for (const mover of movers) await mover.close()
    await queue.close()
    await callbackQueue.close()
    queueConnection.disconnect() // BullMQ leaves a connection it was given open
  })
  return { prefix, keys, intake, queue, callbackQueue, startMover, logLines }
}

const jobData = (invocationId: string, email = `${invocationId}@example.com`): FlowStepJobData => ({
  invocationId,
  munchkinId: '123-ABC-456',
  campaignId: 7,
  triggered: false,
  callbackUrl: 'https://mkto-cfa.adobe.io/cb',
  sealedCallbackCredentials: 'v1.sealed',
  persons: [{ marketoId: 1, fields: { email }, syncAs: 'Lead' }],
  receivedAt: '2026-11-25T00:00:00.000Z'
})
const entry = (invocationId: string, priority = 10): IntakeEntry => ({ jobId: `flow-step-${invocationId}`, priority, data: jobData(invocationId) })

t.test('entries appended before any worker ran become jobs with the API\'s id, priority and data, and leave the stream', async (t) => {
  const s = setup(t)
  await s.intake.append(entry('inv-a', 10))
  await s.intake.append(entry('inv-b', 1))
  t.equal(await s.intake.backlog(), 2)
  s.startMover()
  await eventually(async () => (await s.intake.backlog()) === 0 ? true : undefined, { what: 'the intake drained' })
  const a = await s.queue.getJob('flow-step-inv-a')
  const b = await s.queue.getJob('flow-step-inv-b')
  t.equal(a?.name, FLOW_STEP_JOB_NAME)
  t.same(a?.data, jobData('inv-a'))
  t.equal(a?.opts.priority, 10)
  t.equal(b?.opts.priority, 1)
  t.equal(await s.queue.count(), 2)
  t.equal(await redis.xlen(s.keys.parked), 0, 'nothing parked')
})

t.test('a re-sent invocation (same job id twice) is one job, whether both entries move together or apart', async (t) => {
  const s = setup(t)
  await s.intake.append(entry('inv-twice'))
  await s.intake.append(entry('inv-twice'))
  s.startMover()
  await eventually(async () => (await s.intake.backlog()) === 0 ? true : undefined, { what: 'the intake drained' })
  await s.intake.append(entry('inv-twice'))
  await eventually(async () => (await s.intake.backlog()) === 0 ? true : undefined, { what: 'the intake drained again' })
  t.equal(await s.queue.count(), 1)
})

t.test('new entries are moved as they arrive, by one of several movers each', async (t) => {
  const s = setup(t)
  s.startMover()
  s.startMover()
  const ids = Array.from({ length: 250 }, (_, i) => `inv-${i}`)
  await Promise.all(ids.map(async (id) => { await s.intake.append(entry(id)) }))
  await eventually(async () => (await s.queue.count()) === ids.length ? true : undefined, { what: 'every entry queued' })
  // An entry leaves the stream just after its job is added.
  await eventually(async () => (await s.intake.backlog()) === 0 ? true : undefined, { what: 'the intake drained' })
  const jobs = await s.queue.getJobs(['prioritized', 'waiting'])
  t.same(jobs.map((job) => job.id).sort(), ids.map((id) => `flow-step-${id}`).sort(), 'each invocation queued once')
})

t.test('an entry that cannot be a job is parked with its reason and logged; the entries beside it still move', async (t) => {
  const s = setup(t)
  await s.intake.append(entry('inv-before'))
  await redis.xadd(s.keys.stream, '*', 'v', '1', 'jobId', 'flow-step-broken', 'priority', '10', 'data', '{not json')
  await redis.xadd(s.keys.stream, '*', 'v', '99', 'jobId', 'flow-step-future', 'priority', '10', 'data', '{}')
  await s.intake.append(entry('inv-after'))
  s.startMover()
  await eventually(async () => (await s.intake.backlog()) === 0 ? true : undefined, { what: 'the intake drained' })
  t.ok(await s.queue.getJob('flow-step-inv-before'))
  t.ok(await s.queue.getJob('flow-step-inv-after'))
  t.equal(await s.queue.count(), 2, 'the broken entries are not jobs')
  const parked = await redis.xrange(s.keys.parked, '-', '+')
  t.equal(parked.length, 2)
  const asRecord = (fields: string[]) => Object.fromEntries(fields.flatMap((_, i) => i % 2 === 0 ? [[fields[i], fields[i + 1]]] : []))
  t.match(asRecord(parked[0]![1]), { problem: 'data is not JSON', jobId: 'flow-step-broken', data: '{not json', entryId: /^\d+-\d+$/ })
  t.match(asRecord(parked[1]![1]), { problem: /unknown intake format version "99"/, jobId: 'flow-step-future' })
  const logged = s.logLines.filter((line) => line.msg === 'intake mover: an intake entry cannot become a flow-step job; parked for ops')
  t.equal(logged.length, 2)
  t.equal(logged[0]?.level, 50, 'logged as an error')
  t.notOk(JSON.stringify(logged).includes('{not json'), 'the entry\'s data is not logged')
})

t.test('an entry the queue refuses is parked with the queue\'s reason, and does not hold up the entries beside it', async (t) => {
  const s = setup(t)
  await s.intake.append(entry('inv-good-1'))
  // Decodable, but BullMQ refuses a job id made of digits: the whole addBulk fails.
  await s.intake.append({ jobId: '12345', priority: 10, data: jobData('inv-digits') })
  await s.intake.append(entry('inv-good-2'))
  s.startMover()
  await eventually(async () => (await s.intake.backlog()) === 0 ? true : undefined, { what: 'the intake drained' })
  t.ok(await s.queue.getJob('flow-step-inv-good-1'))
  t.ok(await s.queue.getJob('flow-step-inv-good-2'))
  t.equal(await s.queue.count(), 2)
  const parked = await redis.xrange(s.keys.parked, '-', '+')
  t.equal(parked.length, 1)
  const fields = parked[0]![1]
  t.match(fields[fields.indexOf('problem') + 1], /^the queue refused it: Custom Id cannot be integers/)
  t.equal(fields[fields.indexOf('jobId') + 1], '12345', 'the whole entry is kept for ops')
  t.equal(fields[fields.indexOf('callback') + 1], 'queued')
})

const asRecord = (fields: string[]) => Object.fromEntries(fields.flatMap((_, i) => i % 2 === 0 ? [[fields[i], fields[i + 1]]] : []))

t.test('a parked invocation that can still be called back gets its callback, every person once and failed with the reason', async (t) => {
  const s = setup(t)
  const refused: FlowStepJobData = { ...jobData('inv-refused'), persons: [1, 2, 2, 3].map((marketoId) => ({ marketoId, fields: {}, syncAs: 'Lead' as const })) }
  await s.intake.append({ jobId: '999', priority: 10, data: refused }) // decodable, refused by the queue
  await redis.xadd(s.keys.stream, '*', 'v', '99', 'jobId', 'flow-step-future', 'priority', '10', 'data', JSON.stringify(jobData('inv-future'))) // undecodable, data intact
  await redis.xadd(s.keys.stream, '*', 'v', '1', 'jobId', 'flow-step-broken', 'priority', '10', 'data', '{not json') // nothing to call back
  s.startMover()
  await eventually(async () => (await s.intake.backlog()) === 0 ? true : undefined, { what: 'the intake drained' })

  const callback = await s.callbackQueue.getJob('callback-inv-refused')
  t.same(callback?.data.outcomes.map((o) => [o.marketoId, o.kind, o.errorCode]), [[1, 'failed', 'INTAKE_PARKED'], [2, 'failed', 'INTAKE_PARKED'], [3, 'failed', 'INTAKE_PARKED']])
  t.match(callback?.data.outcomes[0]?.reason, /could not be queued for sync: the queue refused it: Custom Id cannot be integers/)
  t.match(callback?.data, { invocationId: 'inv-refused', munchkinId: '123-ABC-456', callbackUrl: 'https://mkto-cfa.adobe.io/cb', sealedCallbackCredentials: 'v1.sealed' })
  const future = await s.callbackQueue.getJob('callback-inv-future')
  t.match(future?.data.outcomes, [{ marketoId: 1, kind: 'failed', reason: /unknown intake format version "99"/ }])
  t.equal(await s.callbackQueue.count(), 2, 'no callback for the entry with nothing to call back')

  const parked = (await redis.xrange(s.keys.parked, '-', '+')).map(([, fields]) => asRecord(fields))
  t.same(parked.map((p) => [p.jobId, p.callback]).sort(), [['999', 'queued'], ['flow-step-broken', 'unrecoverable'], ['flow-step-future', 'queued']], 'what became of each callback is kept with the parked entry')
})

t.test('parked entries are bounded: the oldest go once there are about maxParked', async (t) => {
  const s = setup(t)
  const pipeline = redis.pipeline()
  for (let i = 0; i < 250; i++) pipeline.xadd(s.keys.stream, '*', 'v', '1', 'jobId', `flow-step-junk-${i}`, 'priority', '10', 'data', '{not json')
  await pipeline.exec()
  s.startMover({ maxParked: 100 })
  await eventually(async () => (await s.intake.backlog()) === 0 ? true : undefined, { what: 'the intake drained' })
  const kept = await redis.xlen(s.keys.parked)
  // MAXLEN ~ trims whole stream nodes (100 entries each by default): at least 100 stay, never all 250.
  t.ok(kept >= 100 && kept < 250, `${kept} parked entries kept`)
  const newest = await redis.xrevrange(s.keys.parked, '+', '-', 'COUNT', 1)
  t.equal(asRecord(newest[0]![1]).jobId, 'flow-step-junk-249', 'the newest are kept')
})

t.test('Redis out of memory (noeviction) is "not now": the entries stay, nothing is parked, and they move once memory is freed', async (t) => {
  const s = setup(t)
  for (const id of ['inv-oom-1', 'inv-oom-2', 'inv-oom-3']) await s.intake.append(entry(id))
  const [, policy] = await redis.config('GET', 'maxmemory-policy') as [string, string]
  t.teardown(async () => {
    await redis.config('SET', 'maxmemory', '0')
    await redis.config('SET', 'maxmemory-policy', policy)
  })
  await redis.config('SET', 'maxmemory-policy', 'noeviction')
  await redis.config('SET', 'maxmemory', '1') // below what Redis uses already: every write is refused
  s.startMover()
  const oomFailures = () => s.logLines.filter((line) => line.msg === 'intake mover: could not move invocations into the flow-step queue; retrying' &&
    JSON.stringify(line.err).includes('OOM command not allowed'))
  await eventually(() => oomFailures().length >= 3 || undefined, { what: 'the mover to be refused for memory three times' })
  t.equal(await s.intake.backlog(), 3, 'the entries stay in the intake')
  t.equal(await redis.xlen(s.keys.parked), 0, 'nothing parked')
  t.equal(await s.queue.count(), 0)

  await redis.config('SET', 'maxmemory', '0')
  await eventually(async () => (await s.intake.backlog()) === 0 ? true : undefined, { what: 'the intake drained once memory was freed' })
  t.equal(await s.queue.count(), 3, 'every entry became its job')
  t.equal(await redis.xlen(s.keys.parked), 0, 'still nothing parked')
  t.equal(await s.callbackQueue.count(), 0, 'and no failure reported to Marketo')
})

t.test('batches are bounded in bytes as well as in count; an entry larger than the bound moves alone', async (t) => {
  const s = setup(t)
  const sized = (invocationId: string, bytes: number): IntakeEntry => ({ jobId: `flow-step-${invocationId}`, priority: 10, data: jobData(invocationId, 'x'.repeat(bytes)) })
  for (let i = 0; i < 10; i++) await s.intake.append(sized(`inv-300k-${i}`, 300_000))
  await s.intake.append(sized('inv-2m', 2_000_000))
  s.startMover({ maxBatchBytes: 1_000_000 })
  const loggedBatches = () => s.logLines.filter((line) => line.msg === 'intake mover: invocations queued') as Array<{ moved: number, bytes: number }>
  const batches = await eventually(() => loggedBatches().reduce((sum, b) => sum + b.moved, 0) === 11 ? loggedBatches() : undefined, { what: 'every entry queued' })
  t.equal(await s.queue.count(), 11)
  t.ok(batches.every((b) => b.moved <= 3), `no batch over 1 MB of 300 kB entries (${batches.map((b) => b.moved).join(', ')})`)
  t.ok(batches.filter((b) => b.bytes > 1_000_000).every((b) => b.moved === 1), 'only an entry larger than the bound goes over it, alone')
  t.ok(batches.some((b) => b.bytes > 2_000_000 && b.moved === 1), 'the 2 MB entry moved')
})

t.test('byteBoundedBatches keeps order, fills each batch up to the bound, and gives a too-large entry its own', async (t) => {
  const size = (n: number) => n
  t.same(byteBoundedBatches([3, 3, 3, 3], size, 7), [[3, 3], [3, 3]])
  t.same(byteBoundedBatches([1, 9, 1, 1], size, 5), [[1], [9], [1, 1]])
  t.same(byteBoundedBatches([5, 5], size, 5), [[5], [5]])
  t.same(byteBoundedBatches([], size, 5), [])
})

t.test('close() returns while Redis is unreachable, leaving the batch for another worker', async (t) => {
  const ownServer = await startLocalRedis()
  const keys = flowStepIntakeKeys('unreachable')
  const connections = [0, 1].map(() => {
    const connection = new Redis(ownServer.url, { maxRetriesPerRequest: null, retryStrategy: () => 50 })
    connection.on('error', () => undefined)
    return connection
  })
  const queue = new Queue<FlowStepJobData>(QUEUE.flowStep, { connection: connections[0]!, prefix: 'unreachable' })
  queue.on('error', () => undefined)
  const callbackQueue = new Queue<FlowCallbackJobData>(QUEUE.flowStepCallback, { connection: connections[0]!, prefix: 'unreachable' })
  callbackQueue.on('error', () => undefined)
  const mover = new IntakeMover({ redis: connections[1]!, queue, callbackQueue, keys, logger: pino({ level: 'silent' }), claimIdleMs: 60_000, blockMs: 200 })
  mover.start()
  await eventually(async () => (await connections[0]!.exists(keys.stream)) === 1 ? true : undefined, { what: 'the mover reading' })
  await ownServer.stop()
  let timer: NodeJS.Timeout | undefined
  const outcome = await Promise.race([
    mover.close().then(() => 'closed'),
    new Promise((resolve) => { timer = setTimeout(() => { resolve('hung') }, 10_000) })
  ])
  clearTimeout(timer)
  t.equal(outcome, 'closed')
  connections[0]!.disconnect()
})

t.test('an entry read by a mover that died before queueing it is taken over by another', async (t) => {
  const s = setup(t, { claimIdleMs: 300 })
  await redis.xgroup('CREATE', s.keys.stream, s.keys.group, '0', 'MKSTREAM')
  await s.intake.append(entry('inv-orphaned'))
  // A mover that read the entry and was killed: it stays pending under that consumer's name.
  const read = await redis.xreadgroup('GROUP', s.keys.group, 'killed-worker', 'COUNT', 10, 'STREAMS', s.keys.stream, '>') as Array<[string, unknown[]]>
  t.equal(read[0]?.[1].length, 1)
  s.startMover()
  await eventually(async () => await s.queue.getJob('flow-step-inv-orphaned'), { what: 'the orphaned entry queued' })
  await eventually(async () => (await s.intake.backlog()) === 0 ? true : undefined, { what: 'the entry deleted' })
  const pending = await redis.xpending(s.keys.stream, s.keys.group) as [number, ...unknown[]]
  t.equal(pending[0], 0, 'nothing left pending')
  t.ok(s.logLines.some((line) => line.msg === 'intake mover: took over invocations a stopped worker had read but not queued'))
})

t.test('a mover recreates its consumer group when Redis lost it, and carries on', async (t) => {
  const s = setup(t)
  s.startMover()
  await s.intake.append(entry('inv-1'))
  await eventually(async () => await s.queue.getJob('flow-step-inv-1'), { what: 'the first entry queued' })
  await redis.del(s.keys.stream) // the group goes with the key, as after a restart without persistence
  await s.intake.append(entry('inv-2'))
  await eventually(async () => await s.queue.getJob('flow-step-inv-2'), { what: 'the entry after the loss queued' })
  await eventually(async () => (await s.intake.backlog()) === 0 ? true : undefined, { what: 'the entry deleted' })
})

t.test('a closed mover leaves the group; a clean stop leaves nothing pending', async (t) => {
  const s = setup(t)
  const mover = s.startMover()
  await s.intake.append(entry('inv-x'))
  await eventually(async () => await s.queue.getJob('flow-step-inv-x'), { what: 'queued' })
  await mover.close()
  const consumers = await redis.xinfo('CONSUMERS', s.keys.stream, s.keys.group) as unknown[]
  t.equal(consumers.length, 0)
})

t.test('decodeIntakeEntry names what is wrong with an entry', async (t) => {
  const good = ['v', '1', 'jobId', 'flow-step-inv', 'priority', '1', 'data', JSON.stringify(jobData('inv'))]
  t.same(decodeIntakeEntry(good), { jobId: 'flow-step-inv', priority: 1, data: jobData('inv') })
  const withField = (name: string, value: string) => good.map((item, i) => good[i - 1] === name ? value : item)
  t.same(decodeIntakeEntry(withField('v', '2')), { problem: 'unknown intake format version "2"' })
  t.same(decodeIntakeEntry(withField('jobId', '')), { problem: 'no jobId' })
  t.same(decodeIntakeEntry(withField('priority', '-1')), { problem: 'priority "-1" is not an integer from 0 to 2097151' })
  t.same(decodeIntakeEntry(withField('priority', 'high')), { problem: 'priority "high" is not an integer from 0 to 2097151' })
  t.same(decodeIntakeEntry(withField('priority', '3000000')), { problem: 'priority "3000000" is not an integer from 0 to 2097151' }, 'BullMQ refuses priorities past 2^21 - 1')
  t.same(decodeIntakeEntry(withField('data', '[]')), { problem: 'data is not a flow-step invocation' })
  t.same(decodeIntakeEntry(withField('data', '{"invocationId":"x"}')), { problem: 'data is not a flow-step invocation' })
})

t.test('the API\'s append fails fast with a named error while Redis is unreachable', async (t) => {
  const unreachable = new Redis('redis://127.0.0.1:1', { enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: true, retryStrategy: () => null })
  unreachable.on('error', () => undefined) // the refusals are what this test is about
  t.teardown(() => { unreachable.disconnect() })
  const intake = new FlowStepIntake({ redis: unreachable, keys: flowStepIntakeKeys('nowhere'), timeoutMs: 2_000 })
  await t.rejects(intake.append(entry('inv-lost')), IntakeUnavailableError)
  // Appends made in one turn leave as one pipeline; each of them still fails on its own.
  const together = await Promise.allSettled(['inv-1', 'inv-2', 'inv-3'].map(async (id) => { await intake.append(entry(id)) }))
  t.same(together.map((r) => r.status === 'rejected' && r.reason instanceof IntakeUnavailableError), [true, true, true])
})

t.test('appends made in one turn are sent together and each lands once', async (t) => {
  const s = setup(t)
  const ids = Array.from({ length: 40 }, (_, i) => `inv-turn-${i}`)
  await Promise.all(ids.map(async (id) => { await s.intake.append(entry(id)) }))
  const entries = await redis.xrange(s.keys.stream, '-', '+')
  t.same(entries.map(([, fields]) => fields[fields.indexOf('jobId') + 1]), ids.map((id) => `flow-step-${id}`), 'all of them, in the order they were appended')
})
