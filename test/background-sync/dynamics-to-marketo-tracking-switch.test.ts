import t from 'tap'
import { eventually } from '../helpers/flow-step-harness.ts'
import { startBackgroundSyncHarness } from '../helpers/background-sync-harness.ts'
import { SANDBOX_USERS } from '../../sandbox/start-sandbox.ts'
import { CheckpointStore } from '../../src/background-sync/checkpoints.ts'
import { decodeWatermarkCursor, encodeWatermarkCursor, isWatermarkCursor } from '../../src/dynamics/table-watermark-read.ts'

/**
 * A leads table whose change tracking is off, then turned on (issue 12 §1; reference §2: tracking
 * can be turned on, never off), through the worker `npm run worker` builds with BACKGROUND_SYNC=on,
 * on a real Redis with BullMQ job schedulers, against the emulated Dataverse and Marketo. Untracked
 * from the start, the table is read once; once tracking is on, the checkpoint goes back to a delta
 * link, and edits and deletes come through change tracking again.
 */

const harness = await startBackgroundSyncHarness(t, { SYNC_DYNAMICS_PAGE_SIZE: '2' })
const { sandbox, config, redis } = harness
const dana = SANDBOX_USERS.dana.systemuserid
const checkpoints = new CheckpointStore(redis, config.redis.keyPrefix)
const leadCheckpoint = { direction: 'dynamics-to-marketo', table: 'lead' } as const
sandbox.dataverse.changeTracking.setTracked('leads', false)
// Only this file's leads: the sandbox's own is recent, and the watermark's overlap would read it again and again.
for (const row of sandbox.dataverse.store.scan('leads')) sandbox.dataverse.store.delete('leads', String(row.leadid))
const emails = [1, 2, 3, 4, 5].map((index) => `tracking.switch.${index}@example.com`)
const leadIds = emails.map((email, index) => sandbox.dataverse.store.insert('leads', {
  firstname: 'Tracked', lastname: `Later ${index}`, emailaddress1: email, jobtitle: 'Engineer', _modifiedby_value: dana, modifiedon: '2024-05-01T08:00:00Z'
}))

const firstWorker = harness.startWorker()
const personByEmail = (email: string) => sandbox.marketo.persons.findByEmail(email)
const leadDeliveries = () => harness.logs().filter((line) => line.msg === 'Dynamics changes delivered to Marketo' && line.table === 'lead')
const sum = (lines: ReadonlyArray<Record<string, unknown>>, key: string) => lines.reduce((total, line) => total + (typeof line[key] === 'number' ? line[key] : 0), 0)

t.test('a leads table untracked from the start is read once: each lead becomes a person, and no second full read follows', async (t) => {
  await eventually(() => emails.every((email) => personByEmail(email) !== undefined) ? true : undefined, { timeoutMs: 10_000, what: 'the five persons' })
  await eventually(async () => {
    const { cursor } = await checkpoints.load(leadCheckpoint)
    if (cursor === undefined || !isWatermarkCursor(cursor)) return undefined
    const scan = decodeWatermarkCursor(cursor)
    return scan.readThrough === null && scan.settled !== null ? true : undefined
  }, { timeoutMs: 10_000, what: 'the watermark scan caught up' })
  const delivered = leadDeliveries()
  t.equal(sum(delivered, 'created'), 5, 'five persons created')
  t.equal(sum(delivered, 'unchanged'), 0, 'no lead delivered a second time (a tracked read to its end, then the watermark, would deliver all five again)')
  t.ok(harness.logs().some((line) => line.msg?.toString().startsWith('change tracking is off for this table') === true && line.table === 'lead'), 'the switch is logged')
})

t.test('change tracking turned on later: an hour after the last check the checkpoint goes back to a delta link, a lead created meanwhile arrives, and edits and deletes come through change tracking', async (t) => {
  await firstWorker.close()
  sandbox.dataverse.changeTracking.setTracked('leads', true)
  sandbox.dataverse.store.insert('leads', { firstname: 'Made', lastname: 'During The Switch', emailaddress1: 'tracking.switch.new@example.com', _modifiedby_value: dana })
  // An hour passes: the last check is stamped two hours back (the worker is stopped, so nothing races the save).
  const saved = await checkpoints.load(leadCheckpoint)
  const scan = decodeWatermarkCursor(saved.cursor ?? '')
  t.type(scan.trackingCheckedAt, 'string', 'the switch to the watermark stamped its check')
  await checkpoints.save(leadCheckpoint, saved.version, encodeWatermarkCursor({ ...scan, trackingCheckedAt: new Date(Date.now() - 2 * 60 * 60 * 1000).toISOString() }))

  harness.startWorker()
  await eventually(async () => /\$deltatoken=/.test((await checkpoints.load(leadCheckpoint)).cursor ?? '') ? true : undefined, { timeoutMs: 10_000, what: 'the lead checkpoint on a delta link' })
  t.ok(harness.logs().some((line) => line.reason === 'change-tracking-on' && line.table === 'lead'), 'the switch back is logged with its reason')
  await eventually(() => personByEmail('tracking.switch.new@example.com'), { timeoutMs: 5_000, what: 'the lead made during the switch, as a person' })

  sandbox.dataverse.store.update('leads', leadIds[0]!, { jobtitle: 'Chief Engineer', _modifiedby_value: dana })
  await eventually(() => personByEmail(emails[0]!)?.title === 'Chief Engineer' ? true : undefined, { timeoutMs: 5_000, what: 'the edit' })

  const deletedPerson = personByEmail(emails[1]!)!
  t.not(deletedPerson.microsoftIsDeleted, true)
  sandbox.dataverse.store.delete('leads', leadIds[1]!)
  await eventually(() => sandbox.marketo.persons.get(deletedPerson.id as number)?.microsoftIsDeleted === true ? true : undefined, { timeoutMs: 5_000, what: 'the deleted flag' })
  t.ok(sandbox.marketo.persons.get(deletedPerson.id as number), 'the person is flagged, not deleted')
  t.ok(isWatermarkCursor((await checkpoints.load(leadCheckpoint)).cursor ?? '') === false, 'still on change tracking')
})
