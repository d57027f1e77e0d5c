import t from 'tap'
import { eventually } from '../helpers/flow-step-harness.ts'
import { LEAD_CHECKPOINT, startBackgroundSyncProcesses } from '../helpers/background-sync-processes.ts'
import { SANDBOX_USERS } from '../../sandbox/start-sandbox.ts'

/**
 * The sync was away longer than Dataverse keeps a delta token (7 days by default, reference
 * dataverse-web-api-and-msal.md §2): the saved delta link answers ExpiredVersionStamp (0x80044352).
 * The worker drops the cursor and reads the table in full (issue 12 §1); every change made
 * meanwhile arrives, and the rows the full read delivers again are matched by their links: no
 * second person, and no write to a person whose record did not change.
 */

const LINKED = 30
const dana = SANDBOX_USERS.dana.systemuserid

const sync = await startBackgroundSyncProcesses(t, { env: { SYNC_DYNAMICS_PAGE_SIZE: '10' } })
const { h, checkpoints } = sync
const { dataverse, marketo } = h.sandbox

t.test('an expired delta link is recovered by a full read: every change made meanwhile arrives, no duplicate person', async (t) => {
  // Given: thirty leads synced, and the lead feed caught up on a delta link.
  const leads = sync.seedLeads(LINKED, 'kept')
  const persons = await Promise.all(leads.map(async (id) => await sync.linkedPerson(id)))
  await eventually(async () => (await checkpoints.load(LEAD_CHECKPOINT)).cursor?.includes('$deltatoken=') === true || undefined, { timeoutMs: 15_000, what: 'a delta link' })
  await sync.passesLater(LEAD_CHECKPOINT, 1)

  // When: the worker is away while leads are edited and created, and the delta token expires.
  await h.killWorker(0, 'SIGTERM')
  const updatedAt = new Map(persons.map((id) => [id, marketo.persons.get(id)?.updatedAt]))
  const edited = leads.slice(0, 5)
  edited.forEach((id, n) => { dataverse.store.update('leads', id, { jobtitle: `Away ${n}`, _modifiedby_value: dana }) })
  const created = sync.seedLeads(5, 'meanwhile')
  dataverse.changeTracking.expireTokens()
  const expiredCursor = (await checkpoints.load(LEAD_CHECKPOINT)).cursor
  await h.startWorker()

  // Then: the worker says why it reads everything again, and does.
  await eventually(() => h.logText().split('\n').some((line) => line.startsWith('[worker-2] ') && line.includes('"reason":"delta-token-expired"')) || undefined,
    { timeoutMs: 15_000, what: 'the worker to drop the expired cursor' })
  await eventually(async () => {
    const cursor = (await checkpoints.load(LEAD_CHECKPOINT)).cursor
    return cursor !== undefined && cursor !== expiredCursor && cursor.includes('$deltatoken=') ? true : undefined
  }, { timeoutMs: 30_000, what: 'the full read to end on a new delta link' })

  // `edited` are the first leads, so their persons are the first of `persons`.
  t.same(edited.map((_, n) => marketo.persons.get(persons[n]!)?.title), edited.map((_, n) => `Away ${n}`), 'every edit made meanwhile reached its person')
  await eventually(() => sync.personsByEmail('meanwhile').size === 5 || undefined, { timeoutMs: 15_000, what: 'the leads created meanwhile' })
  t.same([...sync.personsByEmail('meanwhile').values()], [1, 1, 1, 1, 1], 'every lead created meanwhile became one person')
  t.same([...sync.personsByEmail('kept').values()].filter((count) => count !== 1), [], 'no lead read again got a second person')
  t.equal(sync.personsByEmail('kept').size, LINKED, 'and none lost')
  const untouched = persons.slice(edited.length).filter((id) => marketo.persons.get(id)?.updatedAt !== updatedAt.get(id))
  t.same(untouched, [], 'the persons of unchanged leads were not written: the full read compared before writing')
  t.equal(new Set(await Promise.all(created.map(async (id) => await sync.linkedPerson(id)))).size, 5, 'each new lead linked')
})

t.test('the logs hold no secret, token, API key or email address', async (t) => {
  t.same(h.leaksInLogs(), [])
})
