import t from 'tap'
import { foldLeadChanges, madeThroughApi } from '../../src/marketo/lead-change-feed.ts'

/** Folding a page of Get Lead Changes (marketo-rest-and-ssfs.md §2.6) into per-person field changes: pure, no I/O. */

let nextActivityId = 1

function marketerEdit (leadId: number, field: string, newValue: unknown, activityDate = '2026-03-02T10:00:00Z'): Record<string, unknown> {
  const id = nextActivityId++
  return {
    id,
    marketoGUID: String(id),
    leadId,
    activityDate,
    activityTypeId: 13,
    fields: [{ id: 7, name: field, newValue, oldValue: null }],
    attributes: [
      { name: 'New Value', value: newValue },
      { name: 'Reason', value: 'Person detail edit' },
      { name: 'Source', value: 'Marketo UI' },
      { name: 'Lead ID', value: leadId }
    ]
  }
}

function apiWrite (leadId: number, field: string, newValue: unknown, activityDate = '2026-03-02T10:00:00Z', requestId = 'a1#18e0'): Record<string, unknown> {
  const activity = marketerEdit(leadId, field, newValue, activityDate)
  return {
    ...activity,
    attributes: [
      { name: 'New Value', value: newValue },
      { name: 'Reason', value: 'Web service API' },
      { name: 'Source', value: 'Web service API' },
      { name: 'Lead ID', value: leadId },
      { name: 'Api Method Name', value: 'syncLead' },
      { name: 'Request Id', value: requestId }
    ]
  }
}

function newLead (leadId: number, sourceType: string): Record<string, unknown> {
  const id = nextActivityId++
  return {
    id,
    marketoGUID: String(id),
    leadId,
    activityDate: '2026-03-02T09:59:00Z',
    activityTypeId: 12,
    primaryAttributeValueId: leadId,
    primaryAttributeValue: 'Ann Lee',
    attributes: [{ name: 'Created Date', value: '2026-03-02' }, { name: 'Source Type', value: sourceType }]
  }
}

t.test('a field changed three times in one page: the latest value is the one reported', async (t) => {
  const batch = foldLeadChanges([
    marketerEdit(1000, 'title', 'CFO', '2026-03-02T10:00:00Z'),
    marketerEdit(1000, 'title', 'CEO', '2026-03-02T10:00:05Z'),
    marketerEdit(1000, 'title', 'Chair', '2026-03-02T10:00:05Z')
  ], ['title'])
  t.same(batch.persons, [{
    personId: 1000,
    isNew: false,
    createdThroughApi: false,
    fields: { title: { value: 'Chair', changedAt: '2026-03-02T10:00:05Z', madeThroughApi: false } }
  }], 'within one second, the later activity in the page wins')
  t.same(batch.skipped, [])
})

t.test('an earlier-dated change listed later does not replace a later one', async (t) => {
  const batch = foldLeadChanges([
    marketerEdit(1000, 'city', 'Oslo', '2026-03-02T10:00:09Z'),
    marketerEdit(1000, 'city', 'Bergen', '2026-03-02T10:00:01Z')
  ], ['city'])
  t.equal(batch.persons[0]?.fields.city?.value, 'Oslo')
})

t.test('dates written with a +0000 offset compare with Z dates by instant', async (t) => {
  const batch = foldLeadChanges([
    marketerEdit(1000, 'city', 'Later', '2026-03-02T10:00:09+0000'),
    marketerEdit(1000, 'city', 'Earlier', '2026-03-02T11:00:01+0200')
  ], ['city'])
  t.equal(batch.persons[0]?.fields.city?.value, 'Later', '11:00:01+02:00 is 09:00:01Z, before 10:00:09Z')
})

t.test('changes of several persons and fields stay apart, persons in order of first appearance', async (t) => {
  const batch = foldLeadChanges([
    marketerEdit(1002, 'title', 'CTO'),
    marketerEdit(1000, 'firstName', 'Ann'),
    marketerEdit(1002, 'city', 'Oslo'),
    marketerEdit(1000, 'title', 'VP')
  ], ['title', 'firstName', 'city'])
  t.same(batch.persons.map((person) => [person.personId, Object.keys(person.fields).sort()]), [
    [1002, ['city', 'title']],
    [1000, ['firstName', 'title']]
  ])
})

t.test('fields not asked for are ignored, and a person with only those changes is not reported', async (t) => {
  const mixed = marketerEdit(1001, 'title', 'CTO')
  const batch = foldLeadChanges([
    marketerEdit(1000, 'leadScore', 40),
    { ...mixed, fields: [{ id: 7, name: 'title', newValue: 'CTO', oldValue: null }, { id: 9, name: 'leadScore', newValue: 12, oldValue: 0 }] }
  ], ['title'])
  t.same(batch.persons.map((person) => person.personId), [1001])
  t.same(Object.keys(batch.persons[0]?.fields ?? {}), ['title'])
})

t.test('a write through the REST API is marked, with its request; a marketer\'s edit is not', async (t) => {
  const batch = foldLeadChanges([
    apiWrite(1000, 'title', 'CTO', '2026-03-02T10:00:00Z', '5f1#18e0a'),
    marketerEdit(1001, 'title', 'VP Sales')
  ], ['title'])
  t.same(batch.persons[0]?.fields.title, { value: 'CTO', changedAt: '2026-03-02T10:00:00Z', madeThroughApi: true, apiRequestId: '5f1#18e0a' })
  t.same(batch.persons[1]?.fields.title, { value: 'VP Sales', changedAt: '2026-03-02T10:00:00Z', madeThroughApi: false })
})

t.test('the latest change decides the echo signal: a marketer editing after our write is a user change', async (t) => {
  const ourThenTheirs = foldLeadChanges([
    apiWrite(1000, 'title', 'CTO', '2026-03-02T10:00:00Z'),
    marketerEdit(1000, 'title', 'VP', '2026-03-02T10:00:03Z')
  ], ['title'])
  t.same(ourThenTheirs.persons[0]?.fields.title, { value: 'VP', changedAt: '2026-03-02T10:00:03Z', madeThroughApi: false })

  const theirsThenOurs = foldLeadChanges([
    marketerEdit(1000, 'title', 'VP', '2026-03-02T10:00:00Z'),
    apiWrite(1000, 'title', 'CTO', '2026-03-02T10:00:03Z')
  ], ['title'])
  t.equal(theirsThenOurs.persons[0]?.fields.title?.madeThroughApi, true)
})

t.test('the echo rule: an API method name, or "Web service API" as Source or Reason', async (t) => {
  const attributes = (entries: Array<[string, unknown]>) => new Map(entries)
  t.equal(madeThroughApi(attributes([['Api Method Name', 'syncLead']])), true)
  t.equal(madeThroughApi(attributes([['Reason', 'Web service API'], ['Source', 'Web service API']])), true,
    'Adobe\'s documented example names no method, only the Web service API source')
  t.equal(madeThroughApi(attributes([['Source', 'web service api']])), true)
  t.equal(madeThroughApi(attributes([['Reason', 'Person detail edit'], ['Source', 'Marketo UI']])), false)
  t.equal(madeThroughApi(attributes([['Reason', 'Changed by Smart Campaign'], ['Source', 'Marketing']])), false)
  t.equal(madeThroughApi(attributes([['Api Method Name', '  ']])), false, 'a blank method name names nothing')
})

t.test('a New Lead reports the person as new, created through the API or not', async (t) => {
  const batch = foldLeadChanges([
    newLead(1005, 'Web service API'),
    apiWrite(1005, 'title', 'CTO'),
    newLead(1006, 'New lead')
  ], ['title'])
  t.same(batch.persons, [
    { personId: 1005, isNew: true, createdThroughApi: true, fields: { title: { value: 'CTO', changedAt: '2026-03-02T10:00:00Z', madeThroughApi: true, apiRequestId: 'a1#18e0' } } },
    { personId: 1006, isNew: true, createdThroughApi: false, fields: {} }
  ])
})

t.test('an emptied field is reported as null', async (t) => {
  const batch = foldLeadChanges([marketerEdit(1000, 'phone', null), { ...marketerEdit(1000, 'city', 'x'), fields: [{ id: 3, name: 'city' }] }], ['phone', 'city'])
  t.same(Object.fromEntries(Object.entries(batch.persons[0]?.fields ?? {}).map(([name, change]) => [name, change.value])), { phone: null, city: null })
})

t.test('unreadable activities are skipped and named, and the rest of the page goes on', async (t) => {
  const batch = foldLeadChanges([
    { marketoGUID: 'g-1', leadId: 'x', activityDate: '2026-03-02T10:00:00Z', activityTypeId: 13, attributes: [] },
    { id: 77, leadId: 1000, activityDate: 'yesterday', activityTypeId: 13, attributes: [] },
    null,
    { ...marketerEdit(1000, 'title', 'x'), marketoGUID: 'g-4', activityTypeId: 37 },
    { ...marketerEdit(1000, 'title', { nested: true }), marketoGUID: 'g-5' },
    marketerEdit(1001, 'title', 'CTO')
  ], ['title'])
  t.same(batch.skipped, [
    { activityId: 'g-1', reason: 'MALFORMED_ACTIVITY' },
    { activityId: '77', reason: 'MALFORMED_ACTIVITY' },
    { activityId: '#2', reason: 'MALFORMED_ACTIVITY' },
    { activityId: 'g-4', reason: 'UNEXPECTED_ACTIVITY_TYPE' },
    { activityId: 'g-5', reason: 'UNREADABLE_FIELD_VALUE' }
  ])
  t.same(batch.persons.map((person) => [person.personId, person.fields.title?.value]), [[1001, 'CTO']])
})

t.test('an empty page folds to nothing', async (t) => {
  t.same(foldLeadChanges([], ['title']), { persons: [], skipped: [] })
})
