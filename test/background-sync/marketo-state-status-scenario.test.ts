import t from 'tap'
import { eventually } from '../helpers/flow-step-harness.ts'
import { startBackgroundSyncHarness, editPersonInMarketo, syncedRecord } from '../helpers/background-sync-harness.ts'
import { ParkedChangeStore, parkedChangeId } from '../../src/background-sync/parked-changes.ts'
import { STATE_STATUS_MISMATCH } from '../../src/sync/state-status.ts'

/**
 * A marketer changes Person Status in Marketo (issue 12 §5, §9), through the worker `npm run worker`
 * builds with BACKGROUND_SYNC=on, on a real Redis, against the emulated Marketo and Dataverse, which
 * refuses a status outside its state as Dataverse does (0x80048408): the lead gets a pair Dataverse
 * accepts, Marketo's Status Reason follows, and an impossible pair is parked with its reason.
 */

const harness = await startBackgroundSyncHarness(t, { SYNC_MARKETO_POLL_INTERVAL_MS: '200' })
const { sandbox, config, redis } = harness
const prefix = config.redis.keyPrefix
const parked = new ParkedChangeStore(redis, prefix)
harness.startWorker()

const editInMarketo = async (personId: number, fields: Record<string, unknown>): Promise<void> => { await editPersonInMarketo(config.marketo.baseUrl, personId, fields) }

async function linkedLead (fields: Record<string, unknown>): Promise<{ recordId: string, personId: number }> {
  // The lead's status reaches the person with the rest: the pair's state is saved.
  return await syncedRecord(harness, 'lead', fields, (person) => person.microsoftStatusReason === 'New')
}

const pairOf = (recordId: string) => {
  const row = sandbox.dataverse.store.get('leads', recordId)
  return row === undefined ? undefined : [row.statecode, row.statuscode]
}

t.test('a marketer sets Person Status to Qualified: the lead is Qualified/Qualified, and Marketo\'s Status Reason follows', async (t) => {
  const { recordId, personId } = await linkedLead({ lastname: 'Hopper', emailaddress1: 'grace.hopper@example.com' })
  t.match(sandbox.marketo.persons.get(personId), { leadStatus: 'Open', microsoftStatusReason: 'New' })
  await editInMarketo(personId, { leadStatus: 'Qualified' })
  await eventually(() => pairOf(recordId)?.[0] === 1 ? true : undefined, { timeoutMs: 5_000, what: 'the lead qualified' })
  t.same(pairOf(recordId), [1, 3], 'state Qualified with its default status')
  await eventually(() => sandbox.marketo.persons.get(personId)?.microsoftStatusReason === 'Qualified' ? true : undefined, { timeoutMs: 5_000, what: 'Status Reason in Marketo' })
  t.equal(await parked.get(parkedChangeId('marketo-to-dynamics', 'lead', recordId)), undefined, 'nothing parked')

  await editInMarketo(personId, { leadStatus: 'Disqualified' })
  await eventually(() => pairOf(recordId)?.[0] === 2 ? true : undefined, { timeoutMs: 5_000, what: 'the lead disqualified' })
  t.same(pairOf(recordId), [2, 4], 'state Disqualified with its default status, Lost')
  await eventually(() => sandbox.marketo.persons.get(personId)?.microsoftStatusReason === 'Lost' ? true : undefined, { timeoutMs: 5_000, what: 'Status Reason Lost in Marketo' })
})

t.test('a Status Reason set alone brings its state along', async (t) => {
  const { recordId, personId } = await linkedLead({ lastname: 'Liskov', emailaddress1: 'barbara.liskov@example.com' })
  await editInMarketo(personId, { microsoftStatusReason: 'Cannot Contact' })
  await eventually(() => pairOf(recordId)?.[1] === 5 ? true : undefined, { timeoutMs: 5_000, what: 'the status reason written' })
  t.same(pairOf(recordId), [2, 5])
  await eventually(() => sandbox.marketo.persons.get(personId)?.leadStatus === 'Disqualified' ? true : undefined, { timeoutMs: 5_000, what: 'Person Status in Marketo' })
})

t.test('an impossible pair (Qualified, Lost) is parked with its reason; the lead keeps its pair, and the title edited beside it is written', async (t) => {
  const { recordId, personId } = await linkedLead({ lastname: 'Lovelace', emailaddress1: 'ada.lovelace@example.com' })
  await editInMarketo(personId, { leadStatus: 'Qualified', microsoftStatusReason: 'Lost', title: 'Countess' })
  const entry = await eventually(async () => await parked.get(parkedChangeId('marketo-to-dynamics', 'lead', recordId)), { timeoutMs: 5_000, what: 'the parked change' })
  t.match(entry, { code: STATE_STATUS_MISMATCH, personId })
  t.same([...(entry?.columns ?? [])].sort(), ['statecode', 'statuscode'])
  t.same([...(entry?.fields ?? [])].sort(), ['leadStatus', 'microsoftStatusReason'])
  t.same(pairOf(recordId), [0, 1], 'the lead keeps its valid pair')
  await eventually(() => sandbox.dataverse.store.get('leads', recordId)?.jobtitle === 'Countess' ? true : undefined, { timeoutMs: 5_000, what: 'the title written beside the refused pair' })
  t.same(pairOf(recordId), [0, 1], 'the state and status still untouched')
})
