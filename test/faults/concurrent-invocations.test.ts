import t from 'tap'
import { acceptedOnly, startProcessHarness, testLogsKeepSecrets } from '../helpers/process-harness.ts'

/**
 * Fifty invocations for one new email arrive at once (a form filled out fifty times, a trigger
 * storm) and are worked on by two worker processes: the atomic email claim in Redis lets exactly
 * one of them create the lead; every other person is reported as existing, linked to that lead.
 */

const h = await startProcessHarness(t, { workers: 2, dataverseLatencyMs: 20 })
const { marketo, dataverse } = h.sandbox

t.test('50 concurrent invocations for one new email, two workers: exactly one lead', async (t) => {
  const email = 'stampede@example.com'
  const ids = Array.from({ length: 50 }, (_, i) => marketo.persons.create({ email, firstName: `Rush${i}`, lastName: 'Stampede' }))

  const runs = await Promise.all(ids.map(async (id) => await h.runCampaign([id], 'trigger')))
  const invocations = runs.flat()
  t.equal(acceptedOnly(invocations).length, 50, 'every invocation is accepted')

  const report = await h.reconcile(invocations)
  t.same(report.problems, [], 'every person is accounted for')
  t.same(report.outcomes, { created: 1, existed: 49, failed: 0 })
  const leads = dataverse.store.list('leads').filter((lead) => lead.emailaddress1 === email)
  t.equal(leads.length, 1, 'one lead')
  t.equal(dataverse.requestCount({ method: 'POST', entitySet: 'leads' }), 1, 'one create was ever sent')

  const workersThatSynced = h.workers.filter((w) => h.logText().split('\n').some((line) => line.startsWith(`[${w.name}] `) && line.includes('"flow-step batch synced"')))
  t.equal(workersThatSynced.length, 2, 'both worker processes took part')
})

testLogsKeepSecrets(t, h)
