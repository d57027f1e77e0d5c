import { randomUUID } from 'node:crypto'
import t from 'tap'
import { startDataverseEmulator } from '../../sandbox/dataverse/index.ts'
import { DataverseError, DataverseUnavailableError } from '../../src/dynamics/dataverse-errors.ts'
import {
  CONTACT_TABLE,
  DuplicateBulkTargetError,
  LEAD_TABLE,
  bulkFailureAction,
  updateRecordsInBulk
} from '../../src/dynamics/bulk-record-update.ts'
import { dataverseTestClient } from '../helpers/dataverse-test-client.ts'

/**
 * Many leads or contacts written with UpdateMultiple, through the product's Dataverse client, against
 * the emulator over real HTTP: one request for many records, a refused batch narrowed down to the
 * refused records (reported with Dynamics' code and message) while the rest is written, and the
 * client's retry policy for the bulk message.
 */

const emulator = await startDataverseEmulator({ requiredFields: { leads: ['lastname'] } })
t.teardown(async () => { await emulator.close() })
t.afterEach(() => { emulator.faults.clear() })

const client = dataverseTestClient(emulator.url, { retry: { baseDelayMs: 1, maxDelayMs: 5 } })

const bulkRequests = (): number => emulator.requestCount({ method: 'POST', entitySet: 'leads' })

function seedLeads (count: number): string[] {
  return Array.from({ length: count }, (_, n) => emulator.store.insert('leads', { lastname: `Seed ${n}` }))
}

t.test('three leads updated in one request, each with only its own columns, authored by the app user', async (t) => {
  const ids = seedLeads(3)
  const before = bulkRequests()
  const outcome = await updateRecordsInBulk(client, LEAD_TABLE, ids.map((id, n) => ({ id, columns: { jobtitle: `Title ${n}` } })))
  t.same(outcome, { written: ids, rejected: [] })
  t.equal(bulkRequests() - before, 1)
  t.same(ids.map((id) => emulator.store.get('leads', id)?.jobtitle), ['Title 0', 'Title 1', 'Title 2'])
  t.ok(ids.every((id) => emulator.store.get('leads', id)?._modifiedby_value === emulator.store.defaultUserId))
})

t.test('contacts go to the contacts table with their own key', async (t) => {
  const id = emulator.store.insert('contacts', { lastname: 'Contact' })
  const outcome = await updateRecordsInBulk(client, CONTACT_TABLE, [{ id, columns: { jobtitle: 'Buyer' } }])
  t.same(outcome.written, [id])
  t.equal(emulator.store.get('contacts', id)?.jobtitle, 'Buyer')
})

t.test('more records than the batch size go in several requests', async (t) => {
  const ids = seedLeads(5)
  const before = bulkRequests()
  const outcome = await updateRecordsInBulk(client, LEAD_TABLE, ids.map((id) => ({ id, columns: { jobtitle: 'Batched' } })), { maxBatchSize: 2 })
  t.same(outcome.written, ids)
  t.equal(bulkRequests() - before, 3)
})

t.test('one invalid record among eight: found by splitting, parked with Dynamics\' message, the other seven written', async (t) => {
  const ids = seedLeads(8)
  const bad = ids[5] as string
  const before = bulkRequests()
  const outcome = await updateRecordsInBulk(client, LEAD_TABLE, ids.map((id) => ({
    id,
    columns: { jobtitle: 'Merged', ...(id === bad ? { lastname: 'L'.repeat(51) } : {}) }
  })))
  t.same(outcome.written, ids.filter((id) => id !== bad), 'the rest written, in order')
  t.equal(outcome.rejected.length, 1)
  t.equal(outcome.rejected[0]?.id, bad)
  t.type(outcome.rejected[0]?.error, DataverseError)
  t.match(outcome.rejected[0]?.error, { status: 400, code: '0x80044331', message: /'lastname' attribute of the 'lead' entity exceeded the maximum allowed length of '50'/ })
  t.equal(emulator.store.get('leads', bad)?.jobtitle, null, 'nothing of the refused record was written')
  // [8] refused → [4] written, [4] refused → [2] written, [2] refused → [1] written, [1] refused.
  t.equal(bulkRequests() - before, 7)
})

t.test('a required column emptied and a row deleted meanwhile: both rejected, the rest written', async (t) => {
  const ids = seedLeads(4)
  const [kept1, emptied, deleted, kept2] = ids as [string, string, string, string]
  emulator.store.delete('leads', deleted)
  const outcome = await updateRecordsInBulk(client, LEAD_TABLE, [
    { id: kept1, columns: { jobtitle: 'Ok' } },
    { id: emptied, columns: { lastname: '' } },
    { id: deleted, columns: { jobtitle: 'Ghost' } },
    { id: kept2, columns: { jobtitle: 'Ok' } }
  ])
  t.same(outcome.written, [kept1, kept2])
  t.same(outcome.rejected.map((r) => [r.id, r.error.status, r.error.code]), [
    [emptied, 400, '0x80040203'],
    [deleted, 404, '0x80040217']
  ])
  t.match(outcome.rejected[1]?.error.message, `With Ids = ${deleted} Do Not Exist`)
  t.equal(emulator.store.get('leads', deleted), undefined, 'an update never brings a deleted row back')
})

t.test('a 429 is waited out and the bulk request sent again', async (t) => {
  const ids = seedLeads(2)
  emulator.faults.throttleNext(1, 0)
  const before = bulkRequests()
  const outcome = await updateRecordsInBulk(client, LEAD_TABLE, ids.map((id) => ({ id, columns: { jobtitle: 'After 429' } })))
  t.same(outcome.written, ids)
  t.equal(bulkRequests() - before, 2)
})

t.test('a 503 is retried (an update of absolute values is idempotent); a lasting outage fails the whole write', async (t) => {
  const ids = seedLeads(2)
  emulator.faults.failNext(1, 503)
  const outcome = await updateRecordsInBulk(client, LEAD_TABLE, ids.map((id) => ({ id, columns: { jobtitle: 'After 503' } })))
  t.same(outcome.written, ids)

  emulator.faults.failNext(10, 503)
  const before = bulkRequests()
  const error = await updateRecordsInBulk(client, LEAD_TABLE, ids.map((id) => ({ id, columns: { jobtitle: 'Never' } }))).catch((e: unknown) => e)
  t.type(error, DataverseUnavailableError, 'not split, not rejected: the records are not at fault')
  t.equal(bulkRequests() - before, 4, 'the client\'s four tries, no splitting')
  t.same(ids.map((id) => emulator.store.get('leads', id)?.jobtitle), ['After 503', 'After 503'])
})

t.test('the same record twice in one write is refused before anything is sent', async (t) => {
  const [id] = seedLeads(1) as [string]
  const before = bulkRequests()
  const error = await updateRecordsInBulk(client, LEAD_TABLE, [{ id, columns: { jobtitle: 'A' } }, { id: id.toUpperCase(), columns: { jobtitle: 'B' } }]).catch((e: unknown) => e)
  t.type(error, DuplicateBulkTargetError)
  t.match(error, { code: 'DUPLICATE_BULK_TARGET' })
  t.equal(bulkRequests(), before)
})

t.test('updateMultiple on the client: a refusal is a DataverseError with Dataverse\'s code, not retried', async (t) => {
  const before = bulkRequests()
  const error = await client.updateMultiple('leads', 'lead', [{ leadid: randomUUID(), jobtitle: 'Nobody' }]).catch((e: unknown) => e)
  t.type(error, DataverseError)
  t.match(error, { status: 404, code: '0x80040217', isRejection: false })
  t.equal(bulkRequests() - before, 1)
})

t.test('bulkFailureAction: record-level refusals split down to one record; anything else fails the write', async (t) => {
  const validation = new DataverseError(400, '0x80044331', 'too long')
  t.equal(bulkFailureAction(validation, 10), 'split')
  t.equal(bulkFailureAction(validation, 1), 'reject')
  t.equal(bulkFailureAction(new DataverseError(404, '0x80040217', 'Lead With Ids = x Do Not Exist'), 3), 'split')
  t.equal(bulkFailureAction(new DataverseError(404, '0x8006088a', 'Resource not found for the segment'), 3), 'fail', 'a wrong URL is our bug, not the records\'')
  t.equal(bulkFailureAction(new DataverseError(413, 'HTTP_413', 'too large'), 2), 'split')
  t.equal(bulkFailureAction(new DataverseError(401, 'HTTP_401', 'unauthorised'), 2), 'fail')
  t.equal(bulkFailureAction(new DataverseUnavailableError('down'), 2), 'fail')
  t.equal(bulkFailureAction(new Error('bug'), 1), 'fail')
})
