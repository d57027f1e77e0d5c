import t from 'tap'
import { eventually } from '../helpers/flow-step-harness.ts'
import { testLogsKeepSecrets } from '../helpers/process-harness.ts'
import { LEAD_CHECKPOINT, startBackgroundSyncProcesses } from '../helpers/background-sync-processes.ts'
import { MARKETO_CHECKPOINT } from '../../src/background-sync/marketo-change-pass.ts'

/**
 * A worker process dies without warning (OOM killer, node drained) while the background sync is
 * delivering a large load page by page (issue 12 §10, §13). Each page's cursor is saved only after
 * Marketo accepted the page, so the killed pass's page is read again by the next worker: at least
 * once. "Not doubled" is what the page's re-delivery must not do: create a second person for a lead
 * (Marketo's createOnly, after a look-up by email), or write a Marketo edit to Dynamics again with
 * another value. A repeated write of an equal value would be allowed by that design; this scenario
 * asserts the stronger thing it observes, one write per edit.
 */

const BULK = 300
const EDITED = 20

const sync = await startBackgroundSyncProcesses(t, { dataverseLatencyMs: 100, env: { SYNC_DYNAMICS_PAGE_SIZE: '20' } })
const { h, checkpoints } = sync
const { dataverse, marketo } = h.sandbox

t.test('SIGKILL the worker while a first sync delivers page by page: a new worker finishes, nothing lost or doubled', async (t) => {
  // Given: twenty leads already linked to persons, and the Marketo feed running.
  const editedLeads = sync.seedLeads(EDITED, 'edited')
  const editedPersons = await Promise.all(editedLeads.map(async (id) => await sync.linkedPerson(id)))
  await sync.marketoFeedStarted()

  // When: three hundred new leads arrive in Dynamics while a marketer edits the twenty persons…
  const bulkLeads = sync.seedLeads(BULK, 'bulk')
  await Promise.all(editedPersons.map(async (personId, n) => { await sync.editInMarketo(personId, { title: `Edited ${n}` }) }))
  // …and the worker is killed once Marketo has some of the new persons, not all.
  await eventually(() => sync.personsByEmail('bulk').size >= 40 || undefined, { timeoutMs: 30_000, intervalMs: 10, what: 'the first sync to be under way' })
  const leadCheckpointAtKill = await checkpoints.load(LEAD_CHECKPOINT)
  const marketoCheckpointAtKill = await checkpoints.load(MARKETO_CHECKPOINT)
  await h.killWorker(0, 'SIGKILL')
  const personsAtKill = sync.personsByEmail('bulk').size
  t.ok(personsAtKill < BULK, `killed mid-delivery: ${personsAtKill} of ${BULK} persons in Marketo`)

  await h.startWorker()

  // Then: every lead is exactly one person, linked to it.
  await eventually(() => sync.personsByEmail('bulk').size === BULK || undefined, { timeoutMs: 45_000, intervalMs: 100, what: 'every new lead in Marketo' })
  const persons = sync.personsByEmail('bulk')
  t.same([...persons.entries()].filter(([, count]) => count !== 1), [], 'one person per email, none doubled')
  const links = await Promise.all(bulkLeads.map(async (id) => await sync.linkedPerson(id, { timeoutMs: 15_000 })))
  t.equal(new Set(links).size, BULK, 'each lead linked to a person of its own')
  const misLinked = bulkLeads.filter((id, n) => String(marketo.persons.get(links[n]!)?.email) !== String(dataverse.store.get('leads', id)?.emailaddress1))
  t.same(misLinked, [], 'each lead linked to the person with its email')

  // Then: every Marketo edit reached its lead, written once.
  await eventually(() => editedLeads.every((id, n) => dataverse.store.get('leads', id)?.jobtitle === `Edited ${n}`) || undefined,
    { timeoutMs: 30_000, intervalMs: 100, what: 'every Marketo edit in Dynamics' })
  await sync.passesLater(MARKETO_CHECKPOINT, 2)
  const writes = sync.serviceLeadWrites()
  const titleWrites = editedLeads.map((id) => (writes.get(id) ?? []).filter((changes) => Object.hasOwn(changes, 'jobtitle')).length)
  t.same(titleWrites, editedLeads.map(() => 1), 'one write of the title per edited lead')

  // Then: both checkpoints moved on from where the killed worker left them.
  await sync.passesLater(LEAD_CHECKPOINT, 2)
  const leadCheckpoint = await checkpoints.load(LEAD_CHECKPOINT)
  t.ok(leadCheckpoint.version > leadCheckpointAtKill.version && leadCheckpoint.cursor !== leadCheckpointAtKill.cursor, 'the lead checkpoint advanced past the page the kill interrupted')
  t.ok((await checkpoints.load(MARKETO_CHECKPOINT)).version > marketoCheckpointAtKill.version, 'the Marketo checkpoint advanced')
  t.ok(h.logText().split('\n').some((line) => line.startsWith('[worker-2] ') && line.includes('"Dynamics changes delivered to Marketo"')), 'the new worker delivered the rest')
})

t.test('the logs hold no secret, token, API key or email address', async (t) => {
  t.same(h.leaksInLogs(), [])
})
