import t, { type Test } from 'tap'
import { startMarketoEmulator, type MarketoEmulator } from '../../sandbox/marketo/index.ts'

/**
 * Custom activities in the Marketo emulator over real HTTP (shared/reference/marketo-rest-and-ssfs.md
 * §2.7, Adobe "Custom Activities"): a type is created as a draft with the documented body, its
 * secondary attributes are added to the draft with Create Custom Activity Type Attributes, it is
 * approved, and only then carries activities, which land in the person's activity log. Plain fetch:
 * node-marketo-rest 0.7.8 has no method for these endpoints (test/contract/ drives them through its
 * generic request method).
 */

const client = { clientId: 'activities-client', clientSecret: 'activities-secret' }

interface Envelope {
  success: boolean
  result?: Array<Record<string, unknown>>
  errors?: Array<{ code: string, message: string }>
}

async function startEmulator (t: Test): Promise<MarketoEmulator> {
  const emu = await startMarketoEmulator({ munchkinId: '123-ABC-456', clients: [client], seedPersons: [{ email: 'ann.lee@example.com', firstName: 'Ann' }] })
  t.teardown(() => emu.close())
  return emu
}

async function restCall (emu: MarketoEmulator, method: 'GET' | 'POST', path: string, body?: unknown): Promise<Envelope> {
  const identity = await fetch(`${emu.identityUrl}/oauth/token?grant_type=client_credentials&client_id=${client.clientId}&client_secret=${client.clientSecret}`)
  const { access_token: token } = await identity.json() as { access_token: string }
  const response = await fetch(`${emu.restUrl}${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) })
  })
  return await response.json() as Envelope
}

/** Create Custom Activity Type's documented body (reference §2.7). */
function syncFailureType (apiName: string): Record<string, unknown> {
  return {
    apiName,
    name: `Dynamics sync failed ${apiName}`,
    triggerName: 'Dynamics sync fails',
    filterName: 'Dynamics sync failed',
    primaryAttribute: { apiName: 'dynamicsEntity', name: 'Dynamics Entity' }
  }
}

/** Create Custom Activity Type Attributes' body: `dynamicsMessage`, then `extra1`… */
function secondaryAttributes (count = 1, from = 0): Record<string, unknown> {
  return {
    attributes: Array.from({ length: count }, (_, offset) => {
      const index = from + offset
      return { apiName: index === 0 ? 'dynamicsMessage' : `extra${index}`, name: index === 0 ? 'Dynamics Message' : `Extra ${index}`, dataType: 'text' }
    })
  }
}

async function approvedType (emu: MarketoEmulator, apiName = 'syncFailed'): Promise<number> {
  const created = await restCall(emu, 'POST', '/v1/activities/external/type.json', syncFailureType(apiName))
  await restCall(emu, 'POST', `/v1/activities/external/type/${apiName}/attributes/create.json`, secondaryAttributes())
  await restCall(emu, 'POST', `/v1/activities/external/type/${apiName}/approve.json`)
  return created.result?.[0]?.id as number
}

t.test('a created type is a draft, listed by the metadata API but not by Get Activity Types until approved', async (t) => {
  const emu = await startEmulator(t)

  // An `attributes` key is not part of Create Custom Activity Type's body: the type is created without them.
  const created = await restCall(emu, 'POST', '/v1/activities/external/type.json', { ...syncFailureType('syncFailed'), ...secondaryAttributes() })
  t.equal(created.success, true)
  t.match(created.result, [{ id: 100001, apiName: 'syncFailed', status: 'draft', primaryAttribute: { apiName: 'dynamicsEntity', dataType: 'string' }, attributes: [] }])
  const withAttributes = await restCall(emu, 'POST', '/v1/activities/external/type/syncFailed/attributes/create.json', secondaryAttributes())
  t.match(withAttributes.result, [{ id: 100001, status: 'draft', attributes: [{ apiName: 'dynamicsMessage', name: 'Dynamics Message', dataType: 'text' }] }])
  const drafts = await restCall(emu, 'GET', '/v1/activities/external/types.json')
  t.match(drafts.result, [{ apiName: 'syncFailed', status: 'draft' }])
  t.notOk('attributes' in (drafts.result?.[0] ?? {}), 'the list shows no attributes: Describe does')
  const typesBefore = await restCall(emu, 'GET', '/v1/activities/types.json')
  t.notOk(typesBefore.result?.some((type) => type.id === 100001), 'a draft is not an activity type yet')

  const approved = await restCall(emu, 'POST', '/v1/activities/external/type/syncFailed/approve.json')
  t.match(approved.result, [{ id: 100001, status: 'approved' }])
  const typesAfter = await restCall(emu, 'GET', '/v1/activities/types.json')
  t.match(typesAfter.result?.find((type) => type.id === 100001), {
    name: 'Dynamics sync failed syncFailed',
    primaryAttribute: { name: 'Dynamics Entity', dataType: 'string' },
    attributes: [{ name: 'Dynamics Message', dataType: 'text' }]
  })
})

t.test('an activity of an approved type lands in the person\'s activity log; an unknown person and a draft type are skipped', async (t) => {
  const emu = await startEmulator(t)
  const typeId = await approvedType(emu)
  await restCall(emu, 'POST', '/v1/activities/external/type.json', syncFailureType('stillDraft'))
  const draftId = (await restCall(emu, 'GET', '/v1/activities/external/types.json')).result?.find((type) => type.apiName === 'stillDraft')?.id

  const added = await restCall(emu, 'POST', '/v1/activities/external.json', {
    input: [
      { leadId: 1000, activityDate: '2026-03-02T12:00:00Z', activityTypeId: typeId, primaryAttributeValue: 'lead', attributes: [{ apiName: 'dynamicsMessage', value: 'Last Name is required' }] },
      { leadId: 99999, activityDate: '2026-03-02T12:00:00Z', activityTypeId: typeId, primaryAttributeValue: 'lead', attributes: [] },
      { leadId: 1000, activityDate: '2026-03-02T12:00:00Z', activityTypeId: draftId, primaryAttributeValue: 'lead', attributes: [] },
      { leadId: 1000, activityDate: '2026-03-02T12:00:00Z', activityTypeId: typeId, primaryAttributeValue: 'lead', attributes: [{ apiName: 'undeclared', value: 'x' }] },
      { leadId: 1000, activityTypeId: typeId, primaryAttributeValue: 'lead', attributes: [] }
    ]
  })

  t.equal(added.success, true)
  t.match(added.result, [
    { status: 'added', id: Number, marketoGUID: String },
    { status: 'skipped', errors: [{ code: '1004', message: 'Lead not found' }] },
    { status: 'skipped', errors: [{ code: '1013' }] },
    { status: 'skipped', errors: [{ code: '1006' }] },
    { status: 'skipped', errors: [{ code: '1002' }] }
  ], 'results in input order, one per record')
  const log = emu.persons.activities(1000).filter((activity) => activity.activityTypeId === typeId)
  t.match(log, [{ activityDate: '2026-03-02T12:00:00Z', primaryAttributeValue: 'lead', attributes: [{ name: 'Dynamics Message', value: 'Last Name is required' }] }])
  t.equal(log.length, 1, 'skipped records write nothing')

  const page = await restCall(emu, 'GET', `/v1/activities/pagingtoken.json?sinceDatetime=2026-01-01T00:00:00Z`)
  const token = (page as unknown as { nextPageToken: string }).nextPageToken
  const read = await restCall(emu, 'GET', `/v1/activities.json?activityTypeIds=${typeId}&leadIds=1000&nextPageToken=${token}`)
  t.match(read.result, [{ leadId: 1000, activityTypeId: typeId, attributes: [{ name: 'Dynamics Message' }] }], 'Get Lead Activities reads it back')
})

t.test('the documented limits: 300 activities per call, 10 types (1027), 20 attributes (1028), one type per apiName', async (t) => {
  const emu = await startEmulator(t)
  const typeId = await approvedType(emu)
  const record = { leadId: 1000, activityDate: '2026-03-02T12:00:00Z', activityTypeId: typeId, primaryAttributeValue: 'lead', attributes: [] }

  const full = await restCall(emu, 'POST', '/v1/activities/external.json', { input: Array.from({ length: 300 }, () => record) })
  t.equal(full.result?.filter((result) => result.status === 'added').length, 300)
  const tooMany = await restCall(emu, 'POST', '/v1/activities/external.json', { input: Array.from({ length: 301 }, () => record) })
  t.match(tooMany, { success: false, errors: [{ code: '1003' }] })

  await restCall(emu, 'POST', '/v1/activities/external/type.json', syncFailureType('wide'))
  const twenty = await restCall(emu, 'POST', '/v1/activities/external/type/wide/attributes/create.json', secondaryAttributes(20))
  t.equal(twenty.success, true, '20 secondary attributes')
  const twentyFirst = await restCall(emu, 'POST', '/v1/activities/external/type/wide/attributes/create.json', secondaryAttributes(1, 20))
  t.match(twentyFirst, { success: false, errors: [{ code: '1028', message: 'Max field limit reached' }] })
  const duplicate = await restCall(emu, 'POST', '/v1/activities/external/type.json', syncFailureType('syncFailed'))
  t.match(duplicate, { success: false, errors: [{ code: '1017' }] })
  for (let index = 3; index <= 10; index++) {
    const created = await restCall(emu, 'POST', '/v1/activities/external/type.json', syncFailureType(`type${index}`))
    t.equal(created.success, true, `type ${index} of 10 is created`)
  }
  const eleventh = await restCall(emu, 'POST', '/v1/activities/external/type.json', syncFailureType('type11'))
  t.match(eleventh, { success: false, errors: [{ code: '1027', message: 'Max Activity Type Limit Reached' }] })
  const missing = await restCall(emu, 'POST', '/v1/activities/external/type/nope/approve.json')
  t.match(missing, { success: false, errors: [{ code: '1013' }] })
  const blank = await restCall(emu, 'POST', '/v1/activities/external/type.json', { name: 'No api name' })
  t.match(blank, { success: false, errors: [{ code: '701', message: 'apiName cannot be blank' }] })
})

t.test('attributes added to an approved type make it "approved with draft": activities keep the approved attributes until the draft is approved', async (t) => {
  const emu = await startEmulator(t)
  const typeId = await approvedType(emu)
  const addWithExtra = async (): Promise<Envelope> => await restCall(emu, 'POST', '/v1/activities/external.json', {
    input: [{ leadId: 1000, activityDate: '2026-03-02T12:00:00Z', activityTypeId: typeId, primaryAttributeValue: 'lead', attributes: [{ apiName: 'dynamicsMessage', value: 'm' }, { apiName: 'extra1', value: 'x' }] }]
  })

  const changed = await restCall(emu, 'POST', '/v1/activities/external/type/syncFailed/attributes/create.json', secondaryAttributes(1, 1))
  t.match(changed.result, [{ id: typeId, status: 'approved with draft', attributes: [{ apiName: 'dynamicsMessage' }, { apiName: 'extra1' }] }], 'the answer shows the draft')
  const live = await restCall(emu, 'GET', '/v1/activities/external/type/syncFailed/describe.json')
  t.match(live.result, [{ status: 'approved with draft' }])
  t.same((live.result?.[0]?.attributes as Array<{ apiName: string }>).map((attribute) => attribute.apiName), ['dynamicsMessage'], 'Describe shows the approved version')
  const draft = await restCall(emu, 'GET', '/v1/activities/external/type/syncFailed/describe.json?draft=true')
  t.same((draft.result?.[0]?.attributes as Array<{ apiName: string }>).map((attribute) => attribute.apiName), ['dynamicsMessage', 'extra1'], 'draft=true shows the draft')
  t.match((await addWithExtra()).result, [{ status: 'skipped', errors: [{ code: '1006' }] }], 'a draft attribute is not live')

  const approved = await restCall(emu, 'POST', '/v1/activities/external/type/syncFailed/approve.json')
  t.match(approved.result, [{ id: typeId, status: 'approved', attributes: [{ apiName: 'dynamicsMessage' }, { apiName: 'extra1' }] }])
  t.match((await addWithExtra()).result, [{ status: 'added' }])
  const types = await restCall(emu, 'GET', '/v1/activities/types.json')
  t.match(types.result?.find((type) => type.id === typeId), { attributes: [{ name: 'Dynamics Message' }, { name: 'Extra 1' }] }, 'Get Activity Types shows the newly approved version')
})

t.test('creating attributes: one that exists is 1017, the same one twice 1036, dataType required; approving with no draft is 709; an unknown type 1013', async (t) => {
  const emu = await startEmulator(t)
  await approvedType(emu)
  const attributesPath = '/v1/activities/external/type/syncFailed/attributes/create.json'

  t.match(await restCall(emu, 'POST', attributesPath, { attributes: [{ apiName: 'extra1', name: 'Extra 1', dataType: 'text' }, { apiName: 'dynamicsMessage', name: 'Dynamics Message', dataType: 'text' }] }),
    { success: false, errors: [{ code: '1017' }] })
  t.match(await restCall(emu, 'POST', attributesPath, { attributes: [{ apiName: 'dynamicsEntity', name: 'Primary again', dataType: 'string' }] }),
    { success: false, errors: [{ code: '1017' }] }, 'the primary attribute\'s apiName is taken too')
  t.match(await restCall(emu, 'POST', attributesPath, { attributes: [{ apiName: 'extra1', name: 'Extra 1', dataType: 'text' }, { apiName: 'extra1', name: 'Extra 1', dataType: 'text' }] }),
    { success: false, errors: [{ code: '1036' }] })
  t.match(await restCall(emu, 'POST', attributesPath, { attributes: [{ apiName: 'extra1', name: 'Extra 1' }] }),
    { success: false, errors: [{ code: '701', message: 'attributes[0].dataType cannot be blank' }] })
  t.match(await restCall(emu, 'POST', attributesPath, { attributes: [] }), { success: false, errors: [{ code: '701' }] })
  t.match(await restCall(emu, 'GET', '/v1/activities/external/type/syncFailed/describe.json'), { result: [{ status: 'approved' }] }, 'a refused request changes nothing: no draft')

  t.match(await restCall(emu, 'POST', '/v1/activities/external/type/syncFailed/approve.json'), { success: false, errors: [{ code: '709' }] })
  t.match(await restCall(emu, 'POST', '/v1/activities/external/type/nope/attributes/create.json', secondaryAttributes()), { success: false, errors: [{ code: '1013' }] })
  t.match(await restCall(emu, 'GET', '/v1/activities/external/type/nope/describe.json'), { success: false, errors: [{ code: '1013' }] })
})
