import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import pino from 'pino'
import { eventually } from '../helpers/flow-step-harness.ts'
import { startBackgroundSyncHarness } from '../helpers/background-sync-harness.ts'
import { loadConfig } from '../../src/config.ts'
import { QUEUE } from '../../src/queue/names.ts'
import { MarketoCallBudget } from '../../src/marketo/marketo-call-budget.ts'
import { buildWorkerRuntime } from '../../src/runtime/worker-runtime.ts'
import { SANDBOX_USERS } from '../../sandbox/start-sandbox.ts'

/**
 * The background sync wired into the worker (issue 12 §4, §11): with BACKGROUND_SYNC=on the
 * worker checks its field mapping against the emulated Marketo's describe and Dataverse's metadata
 * before any scheduler starts, and every Marketo call it makes is charged to the one budget in Redis.
 */

const root = fileURLToPath(new URL('../../', import.meta.url))
const DAILY_BUDGET = 50
const harness = await startBackgroundSyncHarness(t, { LOG_LEVEL: 'debug', MARKETO_DAILY_CALL_BUDGET: String(DAILY_BUDGET) })
const { sandbox, config, redis } = harness
const budget = new MarketoCallBudget(redis, { keyPrefix: config.redis.keyPrefix, dailyBudget: DAILY_BUDGET })
const callsCounted = async () => DAILY_BUDGET - await budget.remainingToday()


// The default mapping with Marketo's `title` renamed to a field the instance does not have.
const directory = mkdtempSync(join(tmpdir(), 'mds-mapping-'))
t.teardown(() => { rmSync(directory, { recursive: true, force: true }) })
const mismatchedFile = join(directory, 'field-mapping.json')
writeFileSync(mismatchedFile, readFileSync(config.sync.fieldMappingFile, 'utf8').replace('"marketoField": "title"', '"marketoField": "favouriteColour"'))

t.test('a worker whose mapping names a field Marketo lacks does not start, and says which', async (t) => {
  t.not(readFileSync(mismatchedFile, 'utf8'), readFileSync(config.sync.fieldMappingFile, 'utf8'), 'the file differs from the default')
  const prefix = 'mds-mismatch'
  const worker = buildWorkerRuntime(loadConfig({ ...sandbox.env, BACKGROUND_SYNC: 'on', SYNC_FIELD_MAPPING_FILE: mismatchedFile, REDIS_KEY_PREFIX: prefix }), pino({ level: 'silent' }))
  t.teardown(async () => { await worker.close() })
  await t.rejects(worker.ready, { code: 'CONFIG_INVALID', message: /favouriteColour/ })
  const keys = await redis.keys(`${prefix}*`)
  t.ok(keys.some((key) => key.includes(QUEUE.flowStep)), 'the flow step, its own feature, did start (the scan sees keys)')
  t.same(keys.filter((key) => key.includes(QUEUE.syncDynamicsChanges)), [], 'no change-pass scheduler or queue: the sync started nothing')
})

t.test('npm run worker with that mapping exits with a message naming the field, without a stack', async (t) => {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/worker.ts'], {
    cwd: root,
    env: { ...process.env, ...sandbox.env, BACKGROUND_SYNC: 'on', SYNC_FIELD_MAPPING_FILE: mismatchedFile, REDIS_KEY_PREFIX: 'mds-mismatch-process' },
    stdio: ['ignore', 'ignore', 'pipe']
  })
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const [code] = await once(child, 'exit') as [number | null]
  t.equal(code, 1)
  t.match(stderr, /invalid configuration/)
  t.match(stderr, /SYNC_FIELD_MAPPING_FILE/)
  t.match(stderr, /favouriteColour/)
  t.notMatch(stderr, /\n\s+at /, 'no stack trace')
})

t.test('with the default mapping the worker starts, and every Marketo call it makes is counted in the shared budget', async (t) => {
  await redis.del(...await redis.keys(`${config.redis.keyPrefix}:{marketo-budget}:*`).then((keys) => keys.length > 0 ? keys : ['none']))
  const before = sandbox.marketo.restCallCount()
  const worker = harness.startWorker()
  await worker.ready
  t.ok(await callsCounted() >= 1, 'the start-up describe is charged')
  sandbox.dataverse.store.insert('leads', { lastname: 'Lovelace', emailaddress1: 'ada.lovelace@example.com', _modifiedby_value: SANDBOX_USERS.dana.systemuserid })
  await eventually(() => sandbox.marketo.persons.findByEmail('ada.lovelace@example.com'), { timeoutMs: 5_000, what: 'the person in Marketo' })
  t.equal(await callsCounted(), sandbox.marketo.restCallCount() - before, 'each call the emulator answered was counted')
})

t.test('once the daily budget is spent, the next call is refused with MARKETO_BUDGET_SPENT and nothing reaches Marketo', async (t) => {
  await budget.markSpentUntilReset()
  t.equal(await callsCounted(), DAILY_BUDGET)
  const calls = sandbox.marketo.restCallCount()
  const logged = harness.logs().length
  sandbox.dataverse.store.insert('leads', { lastname: 'Hopper', emailaddress1: 'grace.hopper@example.com', _modifiedby_value: SANDBOX_USERS.dana.systemuserid })
  await eventually(() => harness.logs().slice(logged).find((line) => (line.err as { code?: string } | undefined)?.code === 'MARKETO_BUDGET_SPENT'), { timeoutMs: 5_000, what: 'a pass refused by the budget' })
  t.equal(sandbox.marketo.restCallCount(), calls, 'no call reached the emulator')
  t.equal(sandbox.marketo.persons.findByEmail('grace.hopper@example.com'), undefined)
})
