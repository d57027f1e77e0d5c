import t, { type Test } from 'tap'
import Marketo from 'node-marketo-rest'
import { startMarketoEmulator, type MarketoEmulator } from '../../sandbox/marketo/index.ts'

/**
 * The unmodified npm client node-marketo-rest 0.7.8 against the Marketo emulator's custom activity
 * type endpoints (shared/reference/marketo-rest-and-ssfs.md §2.7): a type created with the documented
 * body, its secondary attributes added with Create Custom Activity Type Attributes, approved, and an
 * activity added. 0.7.8 has no method for these endpoints; its connection's generic `postJson` and
 * `get` (lib/connection.js, the same requests its own lead.createOrUpdate makes) carry them, with the
 * client's own token, envelope and error handling (§3.4).
 */

const credentials = { clientId: 'contract-client', clientSecret: 'contract-secret' }
const fastRetry = { maxRetries: 2, initialDelay: 10, maxDelay: 50 }

/** node-marketo-rest 0.7.8 `lib/connection.js`: restler's methods, paths relative to `endpoint`. */
interface MarketoConnection {
  postJson: (path: string, data: unknown, options?: Record<string, unknown>) => Promise<Envelope>
  get: (path: string, options?: { query?: Record<string, unknown> }) => Promise<Envelope>
}

interface Envelope {
  success: boolean
  result?: Array<Record<string, unknown>>
}

async function startEmulator (t: Test): Promise<MarketoEmulator> {
  const emu = await startMarketoEmulator({ munchkinId: '123-ABC-456', clients: [credentials], seedPersons: [{ email: 'ann.lee@example.com', firstName: 'Ann' }] })
  t.teardown(() => emu.close())
  return emu
}

function clientFor (emu: MarketoEmulator): { marketo: Marketo, connection: MarketoConnection } {
  const marketo = new Marketo({ endpoint: emu.restUrl, identity: emu.identityUrl, ...credentials, retry: fastRetry })
  return { marketo, connection: (marketo as unknown as { _connection: MarketoConnection })._connection }
}

const attendConference = {
  apiName: 'attendConference',
  name: 'Attend Conference',
  description: 'Attend the conference',
  triggerName: 'Attends Conference',
  filterName: 'Attended Conference',
  primaryAttribute: { apiName: 'conferenceName', name: 'Conference Name', description: 'Name of the conference' }
}

const attributeNames = (envelope: Envelope): unknown => (envelope.result?.[0]?.attributes as Array<{ apiName: string }>).map((attribute) => attribute.apiName)

t.test('create a type, add its attributes, approve it, add an activity: all through node-marketo-rest', async (t) => {
  const emu = await startEmulator(t)
  const { marketo, connection } = clientFor(emu)

  const created = await connection.postJson('/v1/activities/external/type.json', attendConference)
  t.match(created.result, [{ apiName: 'attendConference', status: 'draft', primaryAttribute: { apiName: 'conferenceName', dataType: 'string' } }])
  const typeId = created.result?.[0]?.id as number

  const withAttributes = await connection.postJson('/v1/activities/external/type/attendConference/attributes/create.json', {
    attributes: [
      { apiName: 'conferenceDate', name: 'Conference Date', description: 'Date of the conference', dataType: 'datetime' },
      { apiName: 'numberOfAttendees', name: 'Number of Attendees', dataType: 'integer' }
    ]
  })
  t.match(withAttributes.result, [{ id: typeId, status: 'draft' }])
  t.same(attributeNames(withAttributes), ['conferenceDate', 'numberOfAttendees'])

  const approved = await connection.postJson('/v1/activities/external/type/attendConference/approve.json', {})
  t.match(approved.result, [{ id: typeId, status: 'approved' }])
  const described = await connection.get('/v1/activities/external/type/attendConference/describe.json')
  t.same(attributeNames(described), ['conferenceDate', 'numberOfAttendees'], 'Describe shows the approved attributes')

  const added = await connection.postJson('/v1/activities/external.json', {
    input: [{ leadId: 1000, activityDate: '2026-03-02T12:00:00Z', activityTypeId: typeId, primaryAttributeValue: 'Summit', attributes: [{ apiName: 'numberOfAttendees', value: 120 }] }]
  })
  t.match(added.result, [{ status: 'added', id: Number }])

  const page = await marketo.lead.getPageToken('2026-01-01T00:00:00Z')
  const activities = await marketo.lead.getActivities([1000], [typeId], page.nextPageToken ?? '')
  t.match(activities.result, [{ leadId: 1000, activityTypeId: typeId, primaryAttributeValue: 'Summit', attributes: [{ name: 'Number of Attendees', value: 120 }] }], 'read back by the client\'s own getActivities')
})

t.test('an attribute added to the approved type waits in the draft; the client sees 1017 and 709 as Marketo errors it does not retry', async (t) => {
  const emu = await startEmulator(t)
  const { connection } = clientFor(emu)
  await connection.postJson('/v1/activities/external/type.json', { ...attendConference, attributes: [{ apiName: 'ignored', name: 'Ignored', dataType: 'string' }] })
  await connection.postJson('/v1/activities/external/type/attendConference/attributes/create.json', { attributes: [{ apiName: 'conferenceDate', name: 'Conference Date', dataType: 'datetime' }] })
  await connection.postJson('/v1/activities/external/type/attendConference/approve.json', {})

  const changed = await connection.postJson('/v1/activities/external/type/attendConference/attributes/create.json', { attributes: [{ apiName: 'room', name: 'Room', dataType: 'string' }] })
  t.match(changed.result, [{ status: 'approved with draft' }])
  t.same(attributeNames(await connection.get('/v1/activities/external/type/attendConference/describe.json')), ['conferenceDate'], 'an inline attribute on create was ignored; the live version is unchanged')
  t.same(attributeNames(await connection.get('/v1/activities/external/type/attendConference/describe.json', { query: { draft: true } })), ['conferenceDate', 'room'])

  const callsBefore = emu.restCallCount()
  await t.rejects(connection.postJson('/v1/activities/external/type/attendConference/attributes/create.json', { attributes: [{ apiName: 'room', name: 'Room', dataType: 'string' }] }), { errors: [{ code: '1017' }] })
  await connection.postJson('/v1/activities/external/type/attendConference/approve.json', {})
  await t.rejects(connection.postJson('/v1/activities/external/type/attendConference/approve.json', {}), { errors: [{ code: '709' }] })
  t.equal(emu.restCallCount() - callsBefore, 3, 'one call each: neither refusal is retried')
})
