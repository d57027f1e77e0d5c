import t from 'tap'
import { startFlowStepHarness, eventually } from '../helpers/flow-step-harness.ts'
import { SANDBOX_USERS } from '../../sandbox/start-sandbox.ts'
import type { CallbackRecord } from '../../sandbox/marketo/index.ts'
import { personLinkKey } from '../../src/queue/redis-keys.ts'

/**
 * "Sync Person to Microsoft" end to end: the emulated Marketo runs a campaign that invokes the
 * flow step, the worker creates (or leaves alone) the Dynamics record, and the outcome arrives
 * through the callback in the person's activity log.
 */

const h = await startFlowStepHarness(t, { requiredFields: { leads: ['lastname'] }, env: { FLOW_STEP_ATTEMPTS: '3' } })
const { marketo, dataverse } = h.sandbox

interface CallbackItem {
  leadData: { id: number, microsoftRecordId?: string, microsoftType?: string }
  activityData: { success: boolean, outcome: string, reason?: string, errorCode?: string, dynamicsRecordId?: string, dynamicsRecordType?: string }
}

const itemsOf = (callback: CallbackRecord) => (callback.body as { objectData: CallbackItem[] }).objectData
const leadsWithEmail = (email: string) => dataverse.store.list('leads').filter((l) => String(l.emailaddress1).toLowerCase() === email)
const contactsWithEmail = (email: string) => dataverse.store.list('contacts').filter((c) => String(c.emailaddress1).toLowerCase() === email)

async function runAndWait (personIds: number[], kind: 'trigger' | 'batch', flowStepContext: Record<string, unknown> = {}): Promise<CallbackRecord[]> {
  const run = await marketo.runCampaign(h.service, { personIds, kind, flowStepContext: { syncAs: 'Lead', ...flowStepContext } })
  for (const invocation of run.invocations) {
    if (invocation.status !== 201) throw new Error(`invocation answered ${invocation.status}: ${invocation.body}`)
  }
  return await Promise.all(run.invocations.map(async (i) => await marketo.waitForCallback(i.token, { timeoutMs: 20_000 })))
}

t.test('a new person triggers the campaign: a lead is created with the mapped fields, owned by Assign To, and the outcome lands in the activity log', async (t) => {
  const id = marketo.persons.create({ email: 'Grace.Hopper@Example.com', firstName: 'Grace', lastName: 'Hopper', company: 'Navy', title: 'Rear Admiral', phone: '+1 555 0199' })
  const [callback] = await runAndWait([id], 'trigger', { assignTo: SANDBOX_USERS.dana.systemuserid })
  const [item] = itemsOf(callback!)
  t.match(item, { leadData: { id, microsoftType: 'Lead' }, activityData: { success: true, outcome: 'created', dynamicsRecordType: 'Lead' } })

  const leads = leadsWithEmail('grace.hopper@example.com')
  t.equal(leads.length, 1, 'exactly one lead')
  t.match(leads[0], {
    leadid: item!.leadData.microsoftRecordId,
    firstname: 'Grace',
    lastname: 'Hopper',
    companyname: 'Navy',
    jobtitle: 'Rear Admiral',
    telephone1: '+1 555 0199',
    _ownerid_value: SANDBOX_USERS.dana.systemuserid
  })

  const person = marketo.persons.get(id)
  t.equal(person?.microsoftRecordId, item!.leadData.microsoftRecordId, 'the Dynamics id is written back to the person')
  const activity = marketo.persons.activities(id).find((a) => a.activityTypeId >= 100000)
  t.ok(activity, 'a flow-step activity is in the person\'s activity log')
  t.match(Object.fromEntries(activity!.attributes.map((a) => [a.name, a.value])), { success: true, outcome: 'created' })

  const link = await h.redis.hgetall(personLinkKey(h.config.redis.keyPrefix, id))
  t.match(link, { type: 'Lead', id: item!.leadData.microsoftRecordId }, 'the person ⇄ record link is kept for the background sync')
})

t.test('a person whose lead already exists: nothing is created and the activity says it existed', async (t) => {
  const id = marketo.persons.findByEmail('lena.existing@example.com')!.id
  const before = dataverse.store.list('leads').length
  const [callback] = await runAndWait([id], 'trigger')
  t.match(itemsOf(callback!)[0], { activityData: { success: true, outcome: 'existed', dynamicsRecordType: 'Lead' } })
  t.equal(dataverse.store.list('leads').length, before, 'no lead created')
  t.equal(leadsWithEmail('lena.existing@example.com').length, 1)
})

t.test('a person who is already a Dynamics contact: no lead is created', async (t) => {
  const id = marketo.persons.findByEmail('carl.contact@example.com')!.id
  const [callback] = await runAndWait([id], 'trigger')
  t.match(itemsOf(callback!)[0], { activityData: { success: true, outcome: 'existed', dynamicsRecordType: 'Contact' } })
  t.equal(leadsWithEmail('carl.contact@example.com').length, 0)
})

t.test('Sync As = Contact creates a contact with no account', async (t) => {
  const id = marketo.persons.create({ email: 'ada.contact@example.com', firstName: 'Ada', lastName: 'Lovelace', company: 'Analytical Engines' })
  const [callback] = await runAndWait([id], 'trigger', { syncAs: 'Contact', assignTo: SANDBOX_USERS.sam.systemuserid })
  t.match(itemsOf(callback!)[0], { leadData: { microsoftType: 'Contact' }, activityData: { outcome: 'created', dynamicsRecordType: 'Contact' } })
  const contacts = contactsWithEmail('ada.contact@example.com')
  t.equal(contacts.length, 1)
  t.equal(contacts[0]?._parentcustomerid_value ?? null, null, 'not associated to any account')
  t.equal(contacts[0]?._ownerid_value, SANDBOX_USERS.sam.systemuserid)
  t.equal(leadsWithEmail('ada.contact@example.com').length, 0, 'no lead')
})

t.test('a Dynamics validation error fails only that person, with Dynamics\' message; the others are created', async (t) => {
  const ok1 = marketo.persons.create({ email: 'batch.one@example.com', firstName: 'One', lastName: 'Batch' })
  const bad = marketo.persons.create({ email: 'batch.bad@example.com', firstName: 'X'.repeat(51), lastName: 'Batch' })
  const missing = marketo.persons.create({ email: 'batch.nolastname@example.com', firstName: 'Nolast' })
  const ok2 = marketo.persons.create({ email: 'batch.two@example.com', firstName: 'Two', lastName: 'Batch' })
  const [callback] = await runAndWait([ok1, bad, missing, ok2], 'batch')
  const byId = new Map(itemsOf(callback!).map((i) => [i.leadData.id, i.activityData]))
  t.match(byId.get(ok1), { success: true, outcome: 'created' })
  t.match(byId.get(ok2), { success: true, outcome: 'created' })
  t.match(byId.get(bad), { success: false, outcome: 'failed', errorCode: 'DYNAMICS_0x80044331', reason: /length of the 'firstname' attribute/ })
  t.match(byId.get(missing), { success: false, outcome: 'failed', reason: /'lastname'.*required/ })
  t.equal(leadsWithEmail('batch.bad@example.com').length, 0)
  const badActivity = marketo.persons.activities(bad).find((a) => a.activityTypeId >= 100000)
  t.match(Object.fromEntries(badActivity!.attributes.map((a) => [a.name, a.value])), { success: false, reason: /firstname/ })
})

t.test('concurrent invocations for the same new email across two workers create exactly one lead', async (t) => {
  h.startWorker()
  const email = 'race.condition@example.com'
  const ids = Array.from({ length: 6 }, (_, i) => marketo.persons.create({ email, firstName: `Racer${i}`, lastName: 'Same' }))
  const runs = await Promise.all(ids.map(async (id) => await marketo.runCampaign(h.service, { personIds: [id], kind: 'trigger', flowStepContext: { syncAs: 'Lead' } })))
  const callbacks = await Promise.all(runs.flatMap((r) => r.invocations).map(async (i) => await marketo.waitForCallback(i.token, { timeoutMs: 20_000 })))
  const outcomes = callbacks.map((c) => itemsOf(c)[0]!.activityData.outcome).sort()
  t.same(outcomes, ['created', 'existed', 'existed', 'existed', 'existed', 'existed'])
  t.equal(leadsWithEmail(email).length, 1, 'one lead')
  const recordIds = new Set(callbacks.map((c) => itemsOf(c)[0]!.leadData.microsoftRecordId))
  t.equal(recordIds.size, 1, 'every person is linked to that one lead')
})

t.test('Dynamics throttles (429 with Retry-After): the worker waits it out and the lead is created', async (t) => {
  const id = marketo.persons.create({ email: 'throttled@example.com', firstName: 'Tara', lastName: 'Throttle' })
  const before = dataverse.requestCount()
  dataverse.faults.throttleNext(2, 1)
  const [callback] = await runAndWait([id], 'trigger')
  t.match(itemsOf(callback!)[0], { activityData: { success: true, outcome: 'created' } })
  t.equal(leadsWithEmail('throttled@example.com').length, 1)
  t.ok(dataverse.requestCount() - before >= 5, 'the two throttled requests were retried')
  t.ok(h.logs().some((l) => l.msg === 'dataverse request retried' && l.throttled === 1 && l.waitMs === 1000), 'the Retry-After wait is logged')
})

t.test('Marketo\'s callback endpoint answers 503: the callback is retried until it is accepted', async (t) => {
  const id = marketo.persons.create({ email: 'callback.retry@example.com', firstName: 'Cal', lastName: 'Back' })
  marketo.callbackFaults.failNext(2, 503)
  const [callback] = await runAndWait([id], 'trigger')
  t.equal(callback?.status, 202)
  t.equal(marketo.callbackAttemptCount(callback!.token), 3, 'two refusals, then accepted')
  t.match(itemsOf(callback!)[0], { activityData: { outcome: 'created' } })
})

t.test('a retried invocation (same token) is queued once and reported once', async (t) => {
  const id = marketo.persons.create({ email: 'retried.invocation@example.com', firstName: 'Re', lastName: 'Try' })
  const run = await marketo.runCampaign(h.service, { personIds: [id], kind: 'trigger', flowStepContext: { syncAs: 'Lead' } })
  const invocation = run.invocations[0]!
  const again = await fetch(`${h.sandbox.publicUrl}/submitAsyncAction`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': h.config.ssfs.apiKey },
    body: JSON.stringify(invocation.payload)
  })
  t.equal(again.status, 201, 'Marketo gets its 201 again')
  t.match(await again.json(), { accepted: true, invocationId: /^inv-/ })
  const callback = await marketo.waitForCallback(invocation.token, { timeoutMs: 20_000 })
  t.equal(callback.status, 202)
  t.equal(leadsWithEmail('retried.invocation@example.com').length, 1)
  const jobs = await h.queues.flowStep.getJobs(['completed', 'waiting', 'active', 'prioritized', 'delayed'])
  const mine = jobs.filter((j) => j.data.persons.some((p) => p.marketoId === id))
  t.equal(mine.length, 1, 'one job')
  t.same(mine[0]?.data.persons.map((p) => p.fields), [{}], 'once reported, the completed job keeps no personal data')
})

t.test('a person whose fields were not mapped is read from Marketo; an expired Marketo token is re-acquired', async (t) => {
  const id = marketo.persons.create({ email: 'unmapped.fields@example.com', firstName: 'Una', lastName: 'Mapped', company: 'Via REST' })
  const identityBefore = marketo.identityRequestCount()
  marketo.expireTokens()
  // An invocation carrying only the person id, as Marketo sends when no field is mapped.
  const response = await fetch(`${h.sandbox.publicUrl}/submitAsyncAction`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': h.config.ssfs.apiKey },
    body: JSON.stringify({
      campaignId: 77,
      token: 'unmapped-token',
      apiCallBackKey: 'unmapped-callback-key',
      callbackUrl: marketo.callbackUrl,
      context: { subscription: { munchkinId: marketo.munchkinId } },
      objectData: [{ objectType: 'lead', objectContext: { id }, flowStepContext: { syncAs: 'Lead' } }]
    })
  })
  t.equal(response.status, 201)
  const lead = await eventually(() => leadsWithEmail('unmapped.fields@example.com')[0], { what: 'the lead' })
  t.match(lead, { firstname: 'Una', lastname: 'Mapped', companyname: 'Via REST' }, 'fields read from Marketo REST')
  t.ok(marketo.identityRequestCount() > identityBefore, 'a new Marketo token was fetched')
})

t.test('the Dynamics look-ups are batched: a 20-person batch costs a handful of Dataverse requests, not one per person', async (t) => {
  const ids = Array.from({ length: 20 }, (_, i) => marketo.persons.create({ email: `bulk.${i}@example.com`, firstName: `Bulk${i}`, lastName: 'Person' }))
  const before = dataverse.requestCount({ method: 'GET' })
  const [callback] = await runAndWait(ids, 'batch')
  t.equal(itemsOf(callback!).filter((i) => i.activityData.outcome === 'created').length, 20)
  t.ok(dataverse.requestCount({ method: 'GET' }) - before <= 2, 'one look-up per table for the whole batch')
})

t.test('Dynamics answers 503 for a moment: the look-up is retried and the lead created', async (t) => {
  const id = marketo.persons.create({ email: 'flaky.dynamics@example.com', firstName: 'Flo', lastName: 'Flaky' })
  dataverse.faults.failNext(2, 503)
  const [callback] = await runAndWait([id], 'trigger')
  t.match(itemsOf(callback!)[0], { activityData: { success: true, outcome: 'created' } })
  t.equal(leadsWithEmail('flaky.dynamics@example.com').length, 1)
})

t.test('Dynamics down through every try: each person is still reported, failed with the reason', async (t) => {
  const id = marketo.persons.create({ email: 'dynamics.down@example.com', firstName: 'Dee', lastName: 'Down' })
  dataverse.faults.failNext(1_000_000, 503)
  t.teardown(() => { dataverse.faults.clear() })
  const [callback] = await runAndWait([id], 'trigger')
  dataverse.faults.clear()
  t.match(itemsOf(callback!)[0], { leadData: { id }, activityData: { success: false, outcome: 'failed', errorCode: 'DYNAMICS_UNAVAILABLE', reason: /after 3 tries/ } })
  t.equal(leadsWithEmail('dynamics.down@example.com').length, 0)
})

t.test('the logs of all of the above hold no secret, token, API key or email address', async (t) => {
  const text = h.logText()
  t.ok(text.length > 0)
  const secrets = [h.config.ssfs.apiKey, h.config.marketo.clientSecret, 'sandbox-azure-secret', ...marketo.invocations().flatMap((i) => [i.token, i.apiCallBackKey])]
  const present = secrets.filter((s): s is string => typeof s === 'string' && s.length > 0 && text.includes(s))
  t.equal(present.length, 0, `none of ${secrets.length} secrets and tokens appears in the logs`)
  t.notMatch(text, /[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/, 'no email address in the logs')
  t.notMatch(text, /Bearer [A-Za-z0-9]/, 'no bearer token in the logs')
})
