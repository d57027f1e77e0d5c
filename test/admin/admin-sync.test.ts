import t from 'tap'
import { Queue } from 'bullmq'
import { eventually } from '../helpers/flow-step-harness.ts'
import { startBackgroundSyncHarness } from '../helpers/background-sync-harness.ts'
import { SANDBOX_USERS } from '../../sandbox/start-sandbox.ts'
import { QUEUE, type QueueName } from '../../src/queue/names.ts'
import { queuePrefix, recordLinkKey } from '../../src/queue/redis-keys.ts'

/**
 * Each direction of the background sync through the admin API (issue 13 §4), over real HTTP, with
 * the worker `npm run worker` builds on a real Redis against the emulators: its cursors, lag and
 * pass jobs are shown, and a paused direction carries nothing (its passes still run, read nothing
 * and advance nothing) until it is resumed, when what changed meanwhile arrives.
 */

const ADMIN_KEY = 'admin-key-of-the-sync-test-01'
const harness = await startBackgroundSyncHarness(t, { SYNC_MARKETO_POLL_INTERVAL_MS: '200', ADMIN_API_KEY: ADMIN_KEY })
const { sandbox, config, redis } = harness
const prefix = config.redis.keyPrefix
const dana = SANDBOX_USERS.dana.systemuserid
harness.startWorker()

async function admin (method: string, path: string): Promise<{ status: number, body: any }> {
  const response = await fetch(`${sandbox.publicUrl}${path}`, { method, headers: { authorization: `Bearer ${ADMIN_KEY}` } })
  return { status: response.status, body: await response.json() }
}

async function direction (name: string): Promise<any> {
  const { body } = await admin('GET', '/admin/sync')
  return body.directions.find((entry: { direction: string }) => entry.direction === name)
}

/**
 * Waits for `count` pass jobs of `queue` that started after `since` and ended as a paused pass does
 * (Dynamics: no page read, an empty list; Marketo: `{ kind: 'paused' }`): proof the passes ran and
 * honoured the pause, not that nothing happened to run.
 */
async function pausedPasses (queueName: QueueName, since: number, count: number): Promise<void> {
  const queue = new Queue(queueName, { connection: redis, prefix: queuePrefix(prefix, queueName) })
  try {
    await eventually(async () => {
      const jobs = await queue.getJobs(['completed'], 0, 200)
      const paused = jobs.filter((job) => (job.processedOn ?? 0) > since &&
        (queueName === QUEUE.syncMarketoChanges ? job.returnvalue?.kind === 'paused' : Array.isArray(job.returnvalue) && job.returnvalue.length === 0))
      return paused.length >= count ? true : undefined
    }, { timeoutMs: 10_000, what: `${count} paused passes of ${queueName}` })
  } finally {
    await queue.close()
  }
}

const email = 'ada.lovelace@example.com'
const recordId = sandbox.dataverse.store.insert('leads', { lastname: 'Lovelace', emailaddress1: email, jobtitle: 'Analyst', _modifiedby_value: dana })
const personId = Number(await eventually(async () => await redis.get(recordLinkKey(prefix, 'lead', recordId)) ?? undefined, { timeoutMs: 10_000, what: 'the lead\'s link' }))
await eventually(() => sandbox.marketo.persons.get(personId)?.title === 'Analyst' ? true : undefined, { what: 'the person' })

t.test('each direction: its cursors by kind, version and date (never the link itself), its lag and pass jobs, running', async (t) => {
  const dynamics = await eventually(async () => {
    const status = await direction('dynamics-to-marketo')
    return status.feeds.every((feed: { cursor: { kind: string } }) => feed.cursor.kind === 'delta-link') ? status : undefined
  }, { what: 'both tables on a delta link' })
  t.match(dynamics, { paused: false, pausedAt: null, passes: { queue: QUEUE.syncDynamicsChanges, waiting: Number, active: Number, delayed: Number, failed: 0 } })
  t.same(dynamics.feeds.map((feed: { feed: string }) => feed.feed), ['lead', 'contact'])
  for (const feed of dynamics.feeds) {
    t.ok(feed.cursor.version > 0, `${feed.feed}: saved`)
    t.match(feed.cursor.savedAt, /^\d{4}-\d\d-\d\dT/)
    t.ok(feed.lagSeconds >= 0 && feed.lagSeconds < 60, `${feed.feed}: lag ${feed.lagSeconds} s`)
  }
  const marketo = await direction('marketo-to-dynamics')
  t.match(marketo, { paused: false, feeds: [{ feed: 'person', cursor: { kind: 'paging-token' } }], passes: { queue: QUEUE.syncMarketoChanges } })
  const text = JSON.stringify((await admin('GET', '/admin/sync')).body)
  t.notMatch(text, /deltatoken|http:/i, 'no link is printed')
})

t.test('an unknown direction is a 400 naming it', async (t) => {
  const refused = await admin('POST', '/admin/sync/sideways/pause')
  t.equal(refused.status, 400)
  t.match(refused.body, { code: 'FST_ERR_VALIDATION', message: /direction/ })
})

t.test('Dynamics → Marketo paused: a Dynamics edit does not reach Marketo, and arrives after the resume', async (t) => {
  const paused = await admin('POST', '/admin/sync/dynamics-to-marketo/pause')
  t.match(paused, { status: 200, body: { direction: { direction: 'dynamics-to-marketo', paused: true, pausedAt: /^\d{4}-/ } } })
  t.equal((await direction('marketo-to-dynamics')).paused, false, 'the other direction runs on')
  // A pass already past its pause check may finish its page: the edit comes after one that was not.
  await pausedPasses(QUEUE.syncDynamicsChanges, Date.parse(paused.body.direction.pausedAt), 1)
  const versions = (await direction('dynamics-to-marketo')).feeds.map((feed: { cursor: { version: number } }) => feed.cursor.version)

  sandbox.dataverse.store.update('leads', recordId, { jobtitle: 'Countess', _modifiedby_value: dana })
  const editedAt = Date.now()
  await pausedPasses(QUEUE.syncDynamicsChanges, editedAt, 4)
  t.equal(sandbox.marketo.persons.get(personId)?.title, 'Analyst', 'not in Marketo while paused')
  t.same((await direction('dynamics-to-marketo')).feeds.map((feed: { cursor: { version: number } }) => feed.cursor.version), versions, 'no cursor advanced')
  t.equal((await admin('POST', '/admin/sync/dynamics-to-marketo/pause')).body.direction.pausedAt, paused.body.direction.pausedAt, 'pausing again keeps the first date')

  t.match(await admin('POST', '/admin/sync/dynamics-to-marketo/resume'), { status: 200, body: { direction: { paused: false, pausedAt: null } } })
  await eventually(() => sandbox.marketo.persons.get(personId)?.title === 'Countess' ? true : undefined, { timeoutMs: 10_000, what: 'the edit in Marketo after the resume' })
  t.pass('the edit made while paused arrived')
})

t.test('Marketo → Dynamics paused: a Marketo edit does not reach Dynamics, and arrives after the resume', async (t) => {
  const paused = await admin('POST', '/admin/sync/marketo-to-dynamics/pause')
  t.match(paused, { status: 200, body: { direction: { direction: 'marketo-to-dynamics', paused: true } } })
  await pausedPasses(QUEUE.syncMarketoChanges, Date.parse(paused.body.direction.pausedAt), 1)
  const version = (await direction('marketo-to-dynamics')).feeds[0].cursor.version

  const edited = await fetch(`${config.marketo.baseUrl}/_emulator/persons/${personId}`, {
    method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ fields: { title: 'Analyst of engines' } })
  })
  t.equal(edited.status, 200)
  await pausedPasses(QUEUE.syncMarketoChanges, Date.now(), 3)
  t.equal(sandbox.dataverse.store.get('leads', recordId)?.jobtitle, 'Countess', 'not in Dynamics while paused')
  t.equal((await direction('marketo-to-dynamics')).feeds[0].cursor.version, version, 'the paging token did not advance')

  await admin('POST', '/admin/sync/marketo-to-dynamics/resume')
  await eventually(() => sandbox.dataverse.store.get('leads', recordId)?.jobtitle === 'Analyst of engines' ? true : undefined, { timeoutMs: 10_000, what: 'the edit in Dynamics after the resume' })
  t.pass('the edit made while paused arrived')
})
