import t from 'tap'
import { acceptedOnly, startProcessHarness, testLogsKeepSecrets } from '../helpers/process-harness.ts'

/**
 * Marketo's callback endpoint refuses every delivery for a while (a Marketo outage). The
 * callbacks are retried with exponential backoff — not hammered — and arrive once Marketo is
 * back, each person's outcome written to their activity log.
 *
 * Scaled down: production's defaults (CALLBACK_BACKOFF_MS 2 s, 12 attempts) ride out an outage
 * of over an hour; here a 6 s outage with a 200 ms base backoff goes through the same sequence of
 * refusals and growing waits.
 */

const OUTAGE_MS = 6_000
const h = await startProcessHarness(t, { workers: 1, env: { CALLBACK_BACKOFF_MS: '200', CALLBACK_ATTEMPTS: '12' } })
const { marketo, dataverse } = h.sandbox

t.test('the callback endpoint refuses for a while: callbacks are retried with backoff and arrive once Marketo is back', async (t) => {
  const outageEnds = Date.now() + OUTAGE_MS
  marketo.callbackFaults.failFor(OUTAGE_MS, 503)
  const invocations = (await Promise.all(Array.from({ length: 4 }, async (_, b) => await h.runCampaign(h.createPersons(5, `unreported${b}`))))).flat()
  t.equal(acceptedOnly(invocations).length, 4)

  const report = await h.reconcile(invocations, { timeoutMs: 30_000 })
  t.same(report.problems, [], 'every person\'s outcome reached Marketo')
  t.same(report.outcomes, { created: 20, existed: 0, failed: 0 })
  t.equal(dataverse.store.list('leads').filter((lead) => String(lead.emailaddress1).startsWith('unreported')).length, 20)

  for (const invocation of invocations) {
    const attempts = marketo.callbacks.filter((c) => c.token === invocation.token)
    const refused = attempts.filter((c) => c.status === 503)
    const accepted = attempts.filter((c) => c.status === 202)
    t.equal(accepted.length, 1, 'delivered once')
    t.ok(Date.parse(accepted[0]!.receivedAt) >= outageEnds, 'after Marketo came back')
    const gaps = attempts.slice(1).map((c, i) => Date.parse(c.receivedAt) - Date.parse(attempts[i]!.receivedAt))
    t.ok(refused.length >= 3 && refused.length <= 7, `retried, with backoff rather than hammering (${refused.length} refusals)`)
    t.ok(gaps.at(-1)! >= 4 * gaps[0]!, `the waits grow (${gaps.join(', ')} ms)`)
    for (const personId of invocation.personIds) {
      t.ok(marketo.persons.activities(personId).some((a) => a.activityTypeId >= 100000), `person ${personId}'s activity log shows the outcome`)
    }
  }
})

testLogsKeepSecrets(t, h)
