import t from 'tap'
import { eventually } from '../helpers/flow-step-harness.ts'
import { LEAD_CHECKPOINT, startBackgroundSyncProcesses } from '../helpers/background-sync-processes.ts'
import { MARKETO_CHECKPOINT } from '../../src/background-sync/marketo-change-pass.ts'
import { QUEUE } from '../../src/queue/names.ts'

/**
 * Two worker processes on one Redis (issue 12 §10: "safe with many workers"). Each runs the job
 * schedulers, and BullMQ hands the change passes to both; a pass holds its feed's lease from
 * loading the checkpoint to saving it, so two passes of one feed never deliver the same page at
 * once. Counted on the emulators: one person per Dynamics lead, one Dynamics write per Marketo edit.
 */

const LEADS = 200
const EDITED = 10

// Passes every 200 ms each way, so the two workers' passes of a feed keep overlapping.
const sync = await startBackgroundSyncProcesses(t, { workers: 2, env: { SYNC_DYNAMICS_PAGE_SIZE: '25', SYNC_MARKETO_POLL_INTERVAL_MS: '200' } })
const { h } = sync
const { dataverse } = h.sandbox

t.test('two workers at once: N Dynamics leads become exactly N persons, and each Marketo edit is written to Dynamics once', async (t) => {
  const editedLeads = sync.seedLeads(EDITED, 'edited')
  const editedPersons = await Promise.all(editedLeads.map(async (id) => await sync.linkedPerson(id)))
  await sync.marketoFeedStarted()

  const leads = sync.seedLeads(LEADS, 'many')
  // Two rounds of edits, the second once the first has arrived: each is one write, not one per worker.
  for (const round of [1, 2]) {
    await Promise.all(editedPersons.map(async (personId, n) => { await sync.editInMarketo(personId, { title: `Round ${round} title ${n}` }) }))
    await eventually(() => editedLeads.every((id, n) => dataverse.store.get('leads', id)?.jobtitle === `Round ${round} title ${n}`) || undefined,
      { timeoutMs: 30_000, intervalMs: 100, what: `round ${round}'s edits in Dynamics` })
  }
  await eventually(() => sync.personsByEmail('many').size === LEADS || undefined, { timeoutMs: 30_000, intervalMs: 100, what: 'every lead in Marketo' })
  // Later passes of both feeds, by either worker, must add nothing.
  await sync.passesLater(MARKETO_CHECKPOINT, 3)
  await sync.passesLater(LEAD_CHECKPOINT, 3)

  const persons = sync.personsByEmail('many')
  t.equal(persons.size, LEADS, 'a person for every lead')
  t.same([...persons.entries()].filter(([, count]) => count !== 1), [], 'no email has two persons')
  const links = await Promise.all(leads.map(async (id) => await sync.linkedPerson(id, { timeoutMs: 5_000 })))
  t.equal(new Set(links).size, LEADS, 'each lead linked to a person of its own')

  const writes = sync.serviceLeadWrites()
  const titleWrites = editedLeads.map((id) => (writes.get(id) ?? []).filter((changes) => Object.hasOwn(changes, 'jobtitle')).map((changes) => changes.jobtitle))
  t.same(titleWrites, editedLeads.map((_, n) => [`Round 1 title ${n}`, `Round 2 title ${n}`]), 'each edit written to its lead exactly once, in order')
  t.same(leads.filter((id) => writes.has(id)), [], 'the leads synced to Marketo got no write back (no echo)')

  const lines = h.logText().split('\n')
  for (const worker of ['worker-1', 'worker-2']) {
    for (const queue of [QUEUE.syncDynamicsChanges, QUEUE.syncMarketoChanges]) {
      t.ok(lines.some((line) => line.startsWith(`[${worker}] `) && line.includes('"job completed"') && line.includes(`"queue":"${queue}"`)), `${worker} ran ${queue} passes`)
    }
  }
})

t.test('the logs hold no secret, token, API key or email address', async (t) => {
  t.same(h.leaksInLogs(), [])
})
