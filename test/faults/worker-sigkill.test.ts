import t from 'tap'
import { eventually } from '../helpers/flow-step-harness.ts'
import { acceptedOnly, startProcessHarness, testLogsKeepSecrets } from '../helpers/process-harness.ts'

/**
 * A worker process dies without warning (OOM killer, node drained) in the middle of a
 * multi-batch load. BullMQ's stalled-job check hands its active jobs to the next worker once their
 * lock expires (WORKER_LOCK_DURATION_MS, shortened here), and a re-run job finds its own email
 * claims, so it looks the persons up before creating: nothing is lost, nothing is doubled.
 */

const h = await startProcessHarness(t, { workers: 1, dataverseLatencyMs: 100 })
const { marketo, dataverse } = h.sandbox

t.test('SIGKILL a worker mid-load: a newly started worker finishes the work', async (t) => {
  const batches = Array.from({ length: 10 }, (_, b) => h.createPersons(20, `killed${b}`))
  const ours = (lead: Record<string, unknown>) => String(lead.emailaddress1).startsWith('killed')

  const runs = await Promise.all(batches.map(async (ids) => await h.runCampaign(ids, 'batch')))
  const invocations = runs.flat()
  t.equal(acceptedOnly(invocations).length, 10, 'ten batch invocations accepted')

  await eventually(() => dataverse.store.list('leads').filter(ours).length >= 30 || undefined, { timeoutMs: 30_000, what: 'the load to be under way' })
  await h.killWorker(0, 'SIGKILL')
  const leadsAtKill = dataverse.store.list('leads').filter(ours).length
  const callbacksAtKill = invocations.filter((i) => marketo.callbacks.some((c) => c.token === i.token && c.status === 202)).length
  t.ok(leadsAtKill < 200 && callbacksAtKill < 10, `killed mid-load (${leadsAtKill} of 200 leads, ${callbacksAtKill} of 10 callbacks)`)

  await h.startWorker()
  const report = await h.reconcile(invocations, { timeoutMs: 45_000 })
  t.same(report.problems, [], 'every person is accounted for')
  // A person whose lead the killed worker had already created (and linked) is reported "existed"
  // by the re-run: the record is found by its link, and nothing says which try created it.
  t.equal(report.outcomes.failed, 0, 'nobody failed')
  t.equal(report.outcomes.created + report.outcomes.existed, 200, 'everybody reported created or existed')
  t.equal(dataverse.store.list('leads').filter(ours).length, 200, 'no duplicate lead')
  t.ok(h.logText().split('\n').some((line) => line.startsWith('[worker-2] ') && line.includes('"flow-step batch synced"')), 'the new worker did the rest')
})

testLogsKeepSecrets(t, h)
