import t, { type Test } from 'tap'
import { startMarketoEmulator } from '../../sandbox/marketo/index.ts'
import { MarketoRestClient } from '../../src/marketo/marketo-rest-client.ts'
import {
  MAX_MESSAGE_LENGTH, SYNC_FAILURE_ACTIVITY_ATTRIBUTES, SYNC_FAILURE_ACTIVITY_TYPE, SyncFailureActivityLog, missingAttributes, syncFailureActivity, type SyncFailure
} from '../../src/marketo/sync-failure-activity.ts'

/**
 * Sync failures in the person's Marketo activity log (issue 12 §9), through the real MarketoRestClient
 * against the emulated Marketo's custom activity endpoints (marketo-rest-and-ssfs.md §2.7), which
 * create a type with its primary attribute only and take secondary attributes through their own
 * endpoint, into the draft: an activity carries only what the approved version declares.
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

t.test('the first failure creates the type, adds its attributes and approves it; later ones cost one call each, not a look-up', async (t) => {
  const ada = emulator.persons.create({ email: 'ada@example.com' })
  const marketo = client()
  const log = new SyncFailureActivityLog(marketo)

  const first = await log.record([failure(ada)])
  t.same([...first.logged], [ada])
  // Five, one more than when the attributes rode along inline: Marketo's Create Custom Activity Type
  // takes none, so they cost their own call (reference §2.7).
  t.equal(marketo.restCallCount, 5, 'list types, create, add attributes, approve, add')
  t.match(emulator.customActivityTypes.byApiName(SYNC_FAILURE_ACTIVITY_TYPE.apiName), {
    status: 'approved',
    name: 'Microsoft Sync Failed',
    attributes: SYNC_FAILURE_ACTIVITY_ATTRIBUTES.map(({ apiName, dataType }) => ({ apiName, dataType }))
  })

  await log.record([failure(ada, { code: '0x80040203' })])
  t.equal(marketo.restCallCount, 6, 'one add, the type id cached')

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

t.test('another process finds the approved type with a look-up and a describe, and changes nothing', async (t) => {
  const bob = emulator.persons.create({ email: 'bob@example.com' })
  const marketo = client()
  const typesBefore = emulator.customActivityTypes.list().length
  const outcome = await new SyncFailureActivityLog(marketo).record([failure(bob)])
  t.same([...outcome.logged], [bob])
  // Three, one more than before: the list shows no attributes (§2.7), so a describe tells whether the
  // approved version holds ours.
  t.equal(marketo.restCallCount, 3, 'list types, describe, add')
  t.equal(emulator.customActivityTypes.list().length, typesBefore)
  t.equal(emulator.customActivityTypes.byApiName(SYNC_FAILURE_ACTIVITY_TYPE.apiName)?.status, 'approved')
})

async function freshEmulator (t: Test): Promise<{ emulator: Awaited<ReturnType<typeof startMarketoEmulator>>, client: () => MarketoRestClient }> {
  const own = await startMarketoEmulator({ munchkinId: '123-ABC-456', clients: [credentials] })
  t.teardown(async () => { await own.close() })
  return { emulator: own, client: () => new MarketoRestClient({ baseUrl: own.url, ...credentials }) }
}

async function loggedAttributes (emu: Awaited<ReturnType<typeof startMarketoEmulator>>, personId: number): Promise<string[]> {
  const typeId = emu.customActivityTypes.byApiName(SYNC_FAILURE_ACTIVITY_TYPE.apiName)!.id
  return emu.persons.activities(personId).filter((activity) => activity.activityTypeId === typeId).flatMap((activity) => activity.attributes.map((attribute) => attribute.name))
}

t.test('a type an older deployment approved without some attributes gets the missing ones and is approved again; its activities carry them all', async (t) => {
  const { emulator: emu, client: newClient } = await freshEmulator(t)
  emu.customActivityTypes.create({ ...SYNC_FAILURE_ACTIVITY_TYPE })
  emu.customActivityTypes.createAttributes(SYNC_FAILURE_ACTIVITY_TYPE.apiName, { attributes: SYNC_FAILURE_ACTIVITY_ATTRIBUTES.slice(0, 1) })
  emu.customActivityTypes.approve(SYNC_FAILURE_ACTIVITY_TYPE.apiName)
  const cleo = emu.persons.create({ email: 'cleo@example.com' })
  const marketo = newClient()

  const outcome = await new SyncFailureActivityLog(marketo).record([failure(cleo)])
  t.same([...outcome.logged], [cleo])
  t.equal(marketo.restCallCount, 5, 'list types, describe, add the three missing attributes, approve, add')
  t.match(emu.customActivityTypes.byApiName(SYNC_FAILURE_ACTIVITY_TYPE.apiName), { status: 'approved', attributes: SYNC_FAILURE_ACTIVITY_ATTRIBUTES.map(({ apiName }) => ({ apiName })) })
  t.same(await loggedAttributes(emu, cleo), ['Dynamics Entity', 'Error Code', 'Error Message', 'Fields'])
})

t.test('a type created with its attributes inline only (the old code) has none in Marketo: they are added and the type approved again', async (t) => {
  const { emulator: emu, client: newClient } = await freshEmulator(t)
  emu.customActivityTypes.create({ ...SYNC_FAILURE_ACTIVITY_TYPE, attributes: SYNC_FAILURE_ACTIVITY_ATTRIBUTES })
  emu.customActivityTypes.approve(SYNC_FAILURE_ACTIVITY_TYPE.apiName)
  t.same(emu.customActivityTypes.byApiName(SYNC_FAILURE_ACTIVITY_TYPE.apiName)?.attributes, [], 'given: Marketo ignored the inline attributes')
  const dora = emu.persons.create({ email: 'dora@example.com' })

  await new SyncFailureActivityLog(newClient()).record([failure(dora)])
  t.same(await loggedAttributes(emu, dora), ['Dynamics Entity', 'Error Code', 'Error Message', 'Fields'])
})

t.test('an approved type with all our attributes and an admin\'s unapproved draft: used as it is, the draft left for the admin', async (t) => {
  const { emulator: emu, client: newClient } = await freshEmulator(t)
  emu.customActivityTypes.create({ ...SYNC_FAILURE_ACTIVITY_TYPE })
  emu.customActivityTypes.createAttributes(SYNC_FAILURE_ACTIVITY_TYPE.apiName, { attributes: SYNC_FAILURE_ACTIVITY_ATTRIBUTES })
  emu.customActivityTypes.approve(SYNC_FAILURE_ACTIVITY_TYPE.apiName)
  emu.customActivityTypes.createAttributes(SYNC_FAILURE_ACTIVITY_TYPE.apiName, { attributes: [{ apiName: 'adminNote', name: 'Admin Note', dataType: 'string' }] })
  const eve = emu.persons.create({ email: 'eve@example.com' })
  const marketo = newClient()

  await new SyncFailureActivityLog(marketo).record([failure(eve)])
  t.equal(marketo.restCallCount, 3, 'list types, describe, add: no approval')
  t.equal(emu.customActivityTypes.byApiName(SYNC_FAILURE_ACTIVITY_TYPE.apiName)?.status, 'approved with draft')
  t.same(await loggedAttributes(emu, eve), ['Dynamics Entity', 'Error Code', 'Error Message', 'Fields'])
})

t.test('two workers meeting no type at once: one type, its attributes added once, both failures logged with them', async (t) => {
  const { emulator: emu, client: newClient } = await freshEmulator(t)
  const fay = emu.persons.create({ email: 'fay@example.com' })
  const gus = emu.persons.create({ email: 'gus@example.com' })

  const [first, second] = await Promise.all([
    new SyncFailureActivityLog(newClient()).record([failure(fay)]),
    new SyncFailureActivityLog(newClient()).record([failure(gus)])
  ])
  t.same([...first.logged, ...second.logged], [fay, gus])
  t.equal(emu.customActivityTypes.list().length, 1)
  t.match(emu.customActivityTypes.byApiName(SYNC_FAILURE_ACTIVITY_TYPE.apiName), { status: 'approved', attributes: SYNC_FAILURE_ACTIVITY_ATTRIBUTES.map(({ apiName }) => ({ apiName })) })
  t.same(await loggedAttributes(emu, fay), ['Dynamics Entity', 'Error Code', 'Error Message', 'Fields'])
  t.same(await loggedAttributes(emu, gus), ['Dynamics Entity', 'Error Code', 'Error Message', 'Fields'])
})

t.test('which of our attributes a version of the type lacks, by apiName', async (t) => {
  t.same(missingAttributes(undefined).map((attribute) => attribute.apiName), ['dynamicsEntity', 'errorCode', 'errorMessage', 'fields'])
  t.same(missingAttributes([{ apiName: 'errorCode' }, { apiName: 'adminNote' }]).map((attribute) => attribute.apiName), ['dynamicsEntity', 'errorMessage', 'fields'])
  t.same(missingAttributes(SYNC_FAILURE_ACTIVITY_ATTRIBUTES), [])
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
