import t from 'tap'
import { eventually } from '../helpers/flow-step-harness.ts'
import { LEAD_CHECKPOINT, startBackgroundSyncProcesses } from '../helpers/background-sync-processes.ts'
import { handBackDelayMs } from '../../src/runtime/process-lifecycle.ts'
import { QUEUE } from '../../src/queue/names.ts'

/**
 * A deploy sends SIGTERM to a worker while its background-sync pass reads a slow Dynamics page by
 * page (issue 13 §6). Near the deadline the pass is handed back: it stops before delivering and
 * frees its feed's lease, so the other worker's next pass of the table runs at once — not after the
 * lease's TTL (a minute here, WORKER_LOCK_DURATION_MS). Its cursor was not saved, so the page it
 * stopped on is read again by the other worker: nothing lost, nothing doubled.
 */

const SHUTDOWN_DEADLINE_MS = 6_000
const LOCK_DURATION_MS = 60_000
const LEADS = 200
const PAGE_SIZE = 5
// A job reads at most 20 pages (background-sync-worker-feature.ts): signalled within its first
// eight, the hand-back (4.5 s later, about seven pages of 0.6 s) still finds that job running.
const PAGES_PER_JOB = 20
const SIGNAL_BY_PAGE = 8

const sync = await startBackgroundSyncProcesses(t, {
  workers: 2,
  // Every Dataverse request takes 0.6 s: a page read is still in flight when the hand-back comes,
  // and it ends well within the deadline's last quarter (1.5 s).
  dataverseLatencyMs: 600,
  env: {
    SYNC_DYNAMICS_PAGE_SIZE: String(PAGE_SIZE),
    SHUTDOWN_DEADLINE_MS: String(SHUTDOWN_DEADLINE_MS),
    WORKER_LOCK_DURATION_MS: String(LOCK_DURATION_MS),
    WORKER_STALLED_INTERVAL_MS: '30000',
    DYNAMICS_REQUEST_TIMEOUT_MS: '10000'
  }
})
const { h } = sync
const { dataverse, marketo } = h.sandbox

interface LogLine { readonly worker: string, readonly time: number, readonly msg: string, readonly fields: Record<string, unknown> }
function logLines (): LogLine[] {
  return h.logText().split('\n').flatMap((text) => {
    const match = /^\[([\w-]+)\] (\{.*\})$/.exec(text)
    if (match === null) return []
    try {
      const line = JSON.parse(match[2]!) as { time: number, msg: string }
      return [{ worker: match[1]!, time: line.time, msg: line.msg, fields: line }]
    } catch { return [] }
  })
}
const leadPages = () => logLines().filter((l) => l.msg === 'Dynamics changes delivered to Marketo' && l.fields.table === 'lead')

t.test('SIGTERM the worker whose pass reads a slow Dynamics: the pass is handed back, the other worker\'s next pass runs at once; nothing lost or doubled', async (t) => {
  // Given: a first sync of two hundred new leads, read five at a time.
  const leads = sync.seedLeads(LEADS, 'shutdown')

  // When: the worker running the lead table's pass is signalled early in its job.
  const running = await eventually(() => {
    const last = leadPages().at(-1)
    if (last === undefined) return undefined
    const pagesOfJob = leadPages().filter((l) => l.fields.jobId === last.fields.jobId).length
    return pagesOfJob <= SIGNAL_BY_PAGE ? last : undefined
  }, { timeoutMs: 60_000, intervalMs: 20, what: 'a lead pass early in its job' })
  t.match(running.fields, { queue: QUEUE.syncDynamicsChanges, jobId: /\S/ }, 'a pass\'s line names its job and queue')
  const index = Number(running.worker.replace('worker-', '')) - 1
  const other = `worker-${2 - index}`
  const signalledAt = Date.now()
  await h.killWorker(index, 'SIGTERM')
  const exitedAfterMs = Date.now() - signalledAt

  // Then: the worker closed cleanly within its deadline, after handing its pass back.
  t.same(await h.workers[index]!.exited, { name: running.worker, code: 0, signal: null }, 'the worker closed cleanly')
  t.ok(exitedAfterMs < SHUTDOWN_DEADLINE_MS + 1_000, `it exited within the deadline (${exitedAfterMs} ms of ${SHUTDOWN_DEADLINE_MS})`)
  t.ok(exitedAfterMs >= handBackDelayMs(SHUTDOWN_DEADLINE_MS) - 500, `its pass ran until the hand-back (${exitedAfterMs} ms)`)
  const handedBack = logLines().find((l) => l.worker === running.worker && l.msg.startsWith('change pass handed back at shutdown'))
  t.match(handedBack?.fields, { table: 'lead', queue: QUEUE.syncDynamicsChanges, jobId: running.fields.jobId }, 'the pass of the job it was running was handed back')
  t.ok(leadPages().filter((l) => l.fields.jobId === running.fields.jobId).length < PAGES_PER_JOB, 'before its job had read all its pages')

  // Then: the other worker's next pass of the table delivered at once, not after the lease's TTL.
  // Two processes' log times may be compared here, unlike a job's hand-back (graceful-shutdown.test.ts):
  // the hand-back line is written right after the lease is freed, and the other worker's first page
  // comes at least one Dataverse read (0.6 s) later; a line that came late still finds a later page.
  const handedBackAt = handedBack?.time ?? Infinity
  const takenOver = await eventually(() => leadPages().find((l) => l.worker === other && l.time >= handedBackAt),
    { timeoutMs: 20_000, intervalMs: 20, what: `${other} to deliver a lead page` })
  const afterMs = takenOver.time - handedBackAt
  t.ok(afterMs < 5_000, `${other} delivered the table's next page ${afterMs} ms after the hand-back (lease TTL: ${LOCK_DURATION_MS} ms)`)

  // Then: every lead is exactly one person, linked to it.
  await eventually(() => sync.personsByEmail('shutdown').size === LEADS || undefined, { timeoutMs: 60_000, intervalMs: 100, what: 'every lead in Marketo' })
  const persons = sync.personsByEmail('shutdown')
  t.same([...persons.entries()].filter(([, count]) => count !== 1), [], 'one person per email, none doubled')
  const links = await Promise.all(leads.map(async (id) => await sync.linkedPerson(id, { timeoutMs: 15_000 })))
  t.equal(new Set(links).size, LEADS, 'each lead linked to a person of its own')
  const misLinked = leads.filter((id, n) => String(marketo.persons.get(links[n]!)?.email) !== String(dataverse.store.get('leads', id)?.emailaddress1))
  t.same(misLinked, [], 'each lead linked to the person with its email')
  await sync.passesLater(LEAD_CHECKPOINT, 1, { timeoutMs: 20_000 })
})

t.test('the logs hold no secret, token, API key or email address', async (t) => {
  t.same(h.leaksInLogs(), [])
})
