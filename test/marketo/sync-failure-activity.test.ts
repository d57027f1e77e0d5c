import t from 'tap'
import { startMarketoEmulator } from '../../sandbox/marketo/index.ts'
import { MarketoRestClient } from '../../src/marketo/marketo-rest-client.ts'
import { MAX_MESSAGE_LENGTH, SYNC_FAILURE_ACTIVITY_TYPE, SyncFailureActivityLog, syncFailureActivity, type SyncFailure } from '../../src/marketo/sync-failure-activity.ts'

/**
 * Sync failures in the person's Marketo activity log (issue 12 §9), through the real MarketoRestClient
 * against the emulated Marketo's custom activity endpoints (marketo-rest-and-ssfs.md §2.7).
 */

const credentials = { clientId: 'cid', clientSecret: 'secret' }
const emulator = await startMarketoEmulator({ munchkinId: '123-ABC-456', clients: [credentials] })
t.teardown(async () => { await emulator.close() })
const client = () => new MarketoRestClient({ baseUrl: emulator.url, ...credentials })

async function activitiesOf (personId: number): Promise<Array<{ activityTypeId: number, primaryAttributeValue: string, attributes: Array<{ name: string, value: unknown }> }>> {
  const response = await fetch(`${emulator.url}/_emulator/persons/${personId}/activities`)
  return ((await response.json()) as { activities: Array<{ activityTypeId: number, primaryAttributeValue: string, attributes: Array<{ name: string, value: unknown }> }> }).activities
}

function failure (personId: number, overrides: Partial<SyncFailure> = {}): SyncFailure {
  return {
    personId,
    table: 'lead',
    recordId: '00000000-0000-4000-8000-00000000000a',
    code: '0x80044331',
    message: 'A validation error occurred. The length of the \'jobtitle\' attribute of the \'lead\' entity exceeded the maximum allowed length of \'100\'.',
    fields: ['title'],
    at: new Date('2026-12-01T10:00:00Z'),
    ...overrides
  }
}

t.test('the first failure creates and approves the type; later ones cost one call each, not a look-up', async (t) => {
  const ada = emulator.persons.create({ email: 'ada@example.com' })
  const marketo = client()
  const log = new SyncFailureActivityLog(marketo)

  const first = await log.record([failure(ada)])
  t.same([...first.logged], [ada])
  t.equal(marketo.restCallCount, 4, 'list types, create, approve, add')
  t.match(emulator.customActivityTypes.byApiName(SYNC_FAILURE_ACTIVITY_TYPE.apiName), { status: 'approved', name: 'Microsoft Sync Failed' })

  await log.record([failure(ada, { code: '0x80040203' })])
  t.equal(marketo.restCallCount, 5, 'one add, the type id cached')

  const activities = (await activitiesOf(ada)).filter((activity) => activity.activityTypeId === emulator.customActivityTypes.byApiName('mdsSyncFailed')!.id)
  t.equal(activities.length, 2)
  t.match(activities[0], {
    primaryAttributeValue: '00000000-0000-4000-8000-00000000000a',
    attributes: [
      { name: 'Dynamics Entity', value: 'lead' },
      { name: 'Error Code', value: '0x80044331' },
      { name: 'Error Message', value: /exceeded the maximum allowed length/ },
      { name: 'Fields', value: 'title' }
    ]
  })
})

t.test('another process finds the approved type with one look-up and creates nothing', async (t) => {
  const bob = emulator.persons.create({ email: 'bob@example.com' })
  const marketo = client()
  const typesBefore = emulator.customActivityTypes.list().length
  await new SyncFailureActivityLog(marketo).record([failure(bob)])
  t.equal(marketo.restCallCount, 2, 'list types, add')
  t.equal(emulator.customActivityTypes.list().length, typesBefore)
})

t.test('301 failures go in two Add Custom Activities calls; a deleted person is skipped with Marketo\'s code', async (t) => {
  const ids = Array.from({ length: 300 }, (_, i) => emulator.persons.create({ email: `many${i}@example.com` }))
  const marketo = client()
  const log = new SyncFailureActivityLog(marketo)
  await log.activityTypeId()
  const calls = marketo.restCallCount
  const outcome = await log.record([...ids.map((id) => failure(id)), failure(999_999)])
  t.equal(marketo.restCallCount - calls, 2)
  t.equal(outcome.logged.size, 300)
  t.same(outcome.skipped, [{ personId: 999_999, code: '1004' }])
})

t.test('a message is bounded, and the activity carries the ids and names it was given', async (t) => {
  const record = syncFailureActivity(failure(7, { message: 'x'.repeat(MAX_MESSAGE_LENGTH * 2), fields: ['title', 'phone'] }), 100_001)
  t.match(record, { leadId: 7, activityTypeId: 100_001, activityDate: '2026-12-01T10:00:00.000Z', primaryAttributeValue: '00000000-0000-4000-8000-00000000000a' })
  t.equal((record.attributes.find((a) => a.apiName === 'errorMessage')!.value as string).length, MAX_MESSAGE_LENGTH)
  t.equal(record.attributes.find((a) => a.apiName === 'fields')!.value, 'title, phone')
})
