import t from 'tap'
import pino from 'pino'
import { startDataverseEmulator } from '../../sandbox/dataverse/index.ts'
import { DataverseClient, preferenceApplied } from '../../src/dynamics/dataverse-client.ts'
import { DataverseError, DataverseUnavailableError } from '../../src/dynamics/dataverse-errors.ts'

/**
 * The Dataverse client's one retry policy, against the emulator over real HTTP: what is retried,
 * what is not, and what the caller is told.
 */

const emulator = await startDataverseEmulator({})
t.teardown(async () => { await emulator.close() })

const client = (overrides: Partial<ConstructorParameters<typeof DataverseClient>[0]> = {}) => new DataverseClient({
  url: emulator.url,
  tokens: { getAccessToken: async () => 'any-bearer-the-emulator-accepts' },
  logger: pino({ level: 'silent' }),
  maxConcurrentRequests: 4,
  requestTimeoutMs: 2_000,
  retry: { baseDelayMs: 5, maxDelayMs: 20 },
  ...overrides
})

t.afterEach(() => { emulator.faults.clear() })

t.test('a create answers the new id, read back by a filtered query', async (t) => {
  const id = await client().create('leads', { firstname: 'Ada', lastname: 'Client', emailaddress1: 'ada.client@example.com' })
  t.match(id, /^[0-9a-f-]{36}$/)
  const rows = await client().retrieveMultiple<{ leadid: string }>('leads', { select: ['leadid'], filter: "emailaddress1 eq 'ada.client@example.com'" })
  t.same(rows.map((r) => r.leadid), [id])
})

t.test('a 429 is waited out for Retry-After, for a create too (a throttled request was not executed)', async (t) => {
  emulator.faults.throttleNext(1, 0)
  const before = emulator.requestCount({ method: 'POST' })
  const id = await client().create('leads', { lastname: 'Throttled' })
  t.ok(id)
  t.equal(emulator.requestCount({ method: 'POST' }) - before, 2)
})

t.test('a 503 on a read is retried; on a create it is not, and the caller is told the outcome is unknown', async (t) => {
  emulator.faults.failNext(2, 503)
  t.same(await client().retrieveMultiple('leads', { select: ['leadid'], top: 1, maxRows: 1 }).then((rows) => rows.length), 1)

  emulator.faults.failNext(1, 503)
  const before = emulator.requestCount({ method: 'POST' })
  await t.rejects(client().create('leads', { lastname: 'Unknown outcome' }), DataverseUnavailableError)
  t.equal(emulator.requestCount({ method: 'POST' }) - before, 1, 'sent once, never blindly again')
})

t.test('a validation error is a DataverseError carrying Dataverse\'s code and message, not retried', async (t) => {
  const error = await client().create('leads', { lastname: 'L'.repeat(51) }).catch((e: unknown) => e)
  t.type(error, DataverseError)
  t.match(error, { status: 400, code: '0x80044331', message: /lastname/, isRejection: true })
})

t.test('a response slower than the timeout is an unknown outcome for a create', async (t) => {
  emulator.faults.setLatency(500)
  await t.rejects(client({ requestTimeoutMs: 100 }).create('leads', { lastname: 'Slow' }), DataverseUnavailableError)
})

t.test('throttling beyond the retry budget gives up with the 429 as the cause', async (t) => {
  emulator.faults.throttleNext(10, 0)
  const error = await client({ retry: { maxThrottleRetries: 2, baseDelayMs: 1, maxDelayMs: 1 } }).retrieveMultiple('leads', { top: 1 }).catch((e: unknown) => e)
  t.type(error, DataverseUnavailableError)
  t.match((error as Error).cause, { status: 429 })
})

t.test('Preference-Applied: a preference is named alone, with a value, or among others; anything else is not it', async (t) => {
  t.ok(preferenceApplied('odata.track-changes', 'odata.track-changes'), 'as Dataverse answers a tracked read (reference §2)')
  t.ok(preferenceApplied('odata.track-changes,odata.maxpagesize=2', 'odata.track-changes'))
  t.ok(preferenceApplied('odata.maxpagesize=1, Odata.Track-Changes', 'odata.track-changes'), 'spaces and case do not matter')
  t.notOk(preferenceApplied('odata.maxpagesize=1', 'odata.track-changes'), 'another preference only')
  t.notOk(preferenceApplied(null, 'odata.track-changes'), 'no header')
  t.notOk(preferenceApplied('', 'odata.track-changes'))
  t.notOk(preferenceApplied('odata.track-changes-ish', 'odata.track-changes'), 'a longer name is another one')
  t.ok(preferenceApplied('odata.maxpagesize=2', 'odata.maxpagesize'), 'a name with a value')
})

t.test('a tracked page says whether Dataverse honoured odata.track-changes: a tracked table does, an untracked one does not', async (t) => {
  emulator.store.insert('contacts', { lastname: 'Header' })
  const tracked = await client().retrieveTrackedPage('contacts?$select=contactid', { maxPageSize: 1 })
  t.equal(tracked.trackChangesApplied, true)
  emulator.changeTracking.setTracked('contacts', false)
  t.teardown(() => { emulator.changeTracking.setTracked('contacts', true) })
  const untracked = await client().retrieveTrackedPage('contacts?$select=contactid', { maxPageSize: 1 })
  t.equal(untracked.trackChangesApplied, false)
})
