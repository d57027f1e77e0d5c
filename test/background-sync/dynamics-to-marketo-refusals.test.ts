import t from 'tap'
import { dynamicsRefusal, skipReasonCode } from '../../src/background-sync/dynamics-to-marketo-delivery.ts'
import { retryResultOf } from '../../src/background-sync/dynamics-parked-change-retry.ts'
import type { DeliveryOutcome } from '../../src/background-sync/dynamics-to-marketo-delivery.ts'

/** The pure decisions behind parking a Dynamics → Marketo record and retrying it (issue 12 §9). */

const RECORD = '00000000-0000-4000-8000-00000000000a'
const fieldsByColumn = new Map([['emailaddress1', 'email'], ['jobtitle', 'title'], ['telephone1', 'phone']])

t.test('a refused record\'s entry: ids, the fields by name with their columns, the code; nothing else', async (t) => {
  t.same(dynamicsRefusal('lead', RECORD, [7], ['title', 'email', 'microsoftIsDeleted'], '1003', fieldsByColumn), {
    direction: 'dynamics-to-marketo', table: 'lead', recordId: RECORD, personIds: [7], fields: ['title', 'email', 'microsoftIsDeleted'], columns: ['emailaddress1', 'jobtitle'], code: '1003'
  }, 'a Marketo-only field (the deleted flag) has no column')
  t.same(dynamicsRefusal('contact', RECORD, [], ['email', 'email'], 'NO_EMAIL', fieldsByColumn).fields, ['email'], 'each field once')
})

t.test('Marketo\'s reason: the first code of a skipped result, the message left out', async (t) => {
  t.equal(skipReasonCode({ status: 'skipped', reasons: [{ code: '1004', message: 'Lead not found' }, { code: '1006', message: 'Field \'x\' not found' }] }), '1004')
  t.equal(skipReasonCode({ status: 'skipped' }), 'SKIPPED', 'a skip without reasons still has one')
})

const none: DeliveryOutcome = { created: 0, updated: 0, unchanged: 0, flaggedDeleted: 0, linked: 0, reported: 0, refused: 0, filtered: 0, converted: 0 }

t.test('what a one-row delivery of a retried record did', async (t) => {
  t.equal(retryResultOf({ ...none, refused: 1 }), 'refused')
  t.equal(retryResultOf({ ...none, reported: 1 }), 'refused', 'still ambiguous: parked again')
  t.equal(retryResultOf({ ...none, filtered: 1 }), 'filtered')
  for (const delivered of ['created', 'updated', 'linked', 'converted'] as const) t.equal(retryResultOf({ ...none, [delivered]: 1 }), 'delivered', delivered)
  t.equal(retryResultOf({ ...none, unchanged: 1 }), 'unchanged')
  t.equal(retryResultOf(none), 'unchanged', 'merged with nothing to write')
})
