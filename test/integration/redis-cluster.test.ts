import t from 'tap'
import { Cluster } from 'ioredis'
import { startFlowStepHarness, eventually, type FlowStepHarness } from '../helpers/flow-step-harness.ts'
import { startLocalRedisCluster } from '../helpers/redis-cluster.ts'
import { SANDBOX_USERS } from '../../sandbox/start-sandbox.ts'
import type { CallbackRecord } from '../../sandbox/marketo/index.ts'
import { assignToPicklistCacheKey, intakeStreamKeys, personLinkKey, recordLinkKey } from '../../src/queue/redis-keys.ts'

/**
 * The flow step end to end on a Redis Cluster of three masters, configured as a user would
 * (REDIS_CLUSTER=true, REDIS_URL one of the nodes): BullMQ's queues, the intake stream, the email
 * claims and the record links all make commands over several keys, which a cluster refuses with
 * CROSSSLOT unless the keys share a hash slot.
 */

const cluster = await startLocalRedisCluster()
let h: FlowStepHarness
try {
  h = await startFlowStepHarness(t, { redisUrl: cluster.url, requiredFields: { leads: ['lastname'] }, env: { REDIS_CLUSTER: 'true', FLOW_STEP_ATTEMPTS: '2' } })
} catch (error) {
  await cluster.stop()
  throw error
}
t.teardown(async () => {
  try {
    await h.close()
  } finally {
    await cluster.stop()
  }
})
const { marketo, dataverse } = h.sandbox
const prefix = h.config.redis.keyPrefix

interface CallbackItem {
  leadData: { id: number, microsoftRecordId?: string }
  activityData: { success: boolean, outcome: string, reason?: string }
}
const itemsOf = (callback: CallbackRecord) => (callback.body as { objectData: CallbackItem[] }).objectData
const leadsWithEmail = (email: string) => dataverse.store.list('leads').filter((l) => String(l.emailaddress1).toLowerCase() === email)

t.test('the service is connected to the cluster, not to one node', async (t) => {
  t.equal(h.config.redis.cluster, true)
  t.ok(h.redis instanceof Cluster, 'the API\'s connection is an ioredis Cluster')
  t.equal(cluster.ports.length, 3)
})

t.test('an invocation on the cluster creates the leads, links the persons and calls Marketo back', async (t) => {
  const grace = marketo.persons.create({ email: 'cluster.grace@example.com', firstName: 'Grace', lastName: 'Cluster' })
  const alan = marketo.persons.create({ email: 'cluster.alan@example.com', firstName: 'Alan', lastName: 'Cluster' })
  const lena = marketo.persons.findByEmail('lena.existing@example.com')!.id
  const run = await marketo.runCampaign(h.service, { personIds: [grace, alan, lena], kind: 'batch', flowStepContext: { syncAs: 'Lead', assignTo: SANDBOX_USERS.dana.systemuserid } })
  t.same(run.invocations.map((i) => i.status), [201], 'the invocation is accepted')
  const callback = await marketo.waitForCallback(run.invocations[0]!.token, { timeoutMs: 20_000 })
  const byId = new Map(itemsOf(callback).map((item) => [item.leadData.id, item]))
  t.match(byId.get(grace), { activityData: { success: true, outcome: 'created' } })
  t.match(byId.get(alan), { activityData: { success: true, outcome: 'created' } })
  t.match(byId.get(lena), { activityData: { success: true, outcome: 'existed' } })
  t.equal(leadsWithEmail('cluster.grace@example.com').length, 1)
  t.equal(leadsWithEmail('cluster.alan@example.com').length, 1)

  const leadId = byId.get(grace)!.leadData.microsoftRecordId!
  t.match(await h.redis.hgetall(personLinkKey(prefix, grace)), { type: 'Lead', id: leadId }, 'the person ⇄ record link is written')
  t.equal(await h.redis.get(recordLinkKey(prefix, 'lead', leadId)), String(grace), 'and its other end, in the same transaction')
})

t.test('concurrent invocations for one new email on two workers create exactly one lead: the email claims work on the cluster', async (t) => {
  h.startWorker()
  const email = 'cluster.race@example.com'
  const ids = Array.from({ length: 4 }, (_, i) => marketo.persons.create({ email, firstName: `Racer${i}`, lastName: 'Cluster' }))
  const runs = await Promise.all(ids.map(async (id) => await marketo.runCampaign(h.service, { personIds: [id], kind: 'trigger', flowStepContext: { syncAs: 'Lead' } })))
  const callbacks = await Promise.all(runs.flatMap((r) => r.invocations).map(async (i) => await marketo.waitForCallback(i.token, { timeoutMs: 20_000 })))
  t.same(callbacks.map((c) => itemsOf(c)[0]!.activityData.outcome).sort(), ['created', 'existed', 'existed', 'existed'])
  t.equal(leadsWithEmail(email).length, 1, 'one lead')
})

t.test('the Assign To picklist is served and cached on the cluster', async (t) => {
  const response = await fetch(`${h.sandbox.publicUrl}/getPicklist`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': h.config.ssfs.apiKey },
    body: JSON.stringify({ name: 'assignTo', type: 'flow' })
  })
  t.equal(response.status, 200)
  t.ok(await eventually(async () => await h.redis.exists(assignToPicklistCacheKey(prefix)) === 1 ? true : undefined, { what: 'the picklist cache' }))
})

t.test('an intake entry that cannot be a job is parked beside the stream, and the intake goes on', async (t) => {
  const keys = intakeStreamKeys(prefix)
  const parkedBefore = await h.redis.xlen(keys.parked)
  await h.redis.xadd(keys.stream, '*', 'v', 'from-the-future')
  await eventually(async () => await h.redis.xlen(keys.parked) > parkedBefore ? true : undefined, { what: 'the parked entry' })
  const id = marketo.persons.create({ email: 'cluster.after.parked@example.com', firstName: 'After', lastName: 'Parked' })
  const run = await marketo.runCampaign(h.service, { personIds: [id], kind: 'trigger', flowStepContext: { syncAs: 'Lead' } })
  const callback = await marketo.waitForCallback(run.invocations[0]!.token, { timeoutMs: 20_000 })
  t.match(itemsOf(callback)[0], { activityData: { success: true, outcome: 'created' } })
})

t.test('no command was refused for keys in different slots', async (t) => {
  const refusals = h.logText().split('\n').filter((line) => /CROSSSLOT|same slot/.test(line))
  t.same(refusals.map((line) => line.slice(0, 300)), [])
})
