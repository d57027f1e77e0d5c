import t from 'tap'
import { hkdfSync } from 'node:crypto'
import pino from 'pino'
import { eventually } from '../helpers/flow-step-harness.ts'
import { startBackgroundSyncHarness, syncedRecord } from '../helpers/background-sync-harness.ts'
import { SANDBOX_USERS } from '../../sandbox/start-sandbox.ts'
import { CheckpointStore } from '../../src/background-sync/checkpoints.ts'
import { retryDynamicsParkedChange, type DynamicsParkedChangeRetryDeps } from '../../src/background-sync/dynamics-parked-change-retry.ts'
import { ParkedChangeStore, parkedChangeId, type DynamicsParkedChange } from '../../src/background-sync/parked-changes.ts'
import { PairStateStore } from '../../src/background-sync/pair-state-store.ts'
import { readSyncFilterTables } from '../../src/dynamics/attribute-metadata.ts'
import { RecordLinkStore } from '../../src/links/record-link-store.ts'
import { parkedChangeKeys, recordLinkKey } from '../../src/queue/redis-keys.ts'
import { createDataverseClient, createMarketoRestClient } from '../../src/runtime/service-clients.ts'
import { fieldFingerprinter } from '../../src/sync/field-fingerprint.ts'
import { readFieldMappingFile } from '../../src/sync/field-mapping-file.ts'
import type { RunningWorker } from '../../src/build-worker.ts'

/**
 * Dynamics → Marketo records that do not reach Marketo are parked, like the other direction's
 * (issue 12 §9, §3): one Marketo refuses (the emulated Marketo skips an update whose email is not
 * ASCII with 1003 Invalid data), one whose email matches persons ambiguously, one without an email.
 * The rest of the page goes on and the checkpoint advances; the record's next change after a fix,
 * or a retry, delivers it and clears the entry. Through the worker `npm run worker` builds with
 * BACKGROUND_SYNC=on, on a real Redis, against the emulated Dataverse and Marketo.
 */

const harness = await startBackgroundSyncHarness(t)
const { sandbox, config, redis } = harness
const prefix = config.redis.keyPrefix
const dana = SANDBOX_USERS.dana.systemuserid
const checkpoints = new CheckpointStore(redis, prefix)
const leadCheckpoint = { direction: 'dynamics-to-marketo', table: 'lead' } as const
const parked = new ParkedChangeStore(redis, prefix)

let worker: RunningWorker = harness.startWorker()

async function linkedLead (fields: Record<string, unknown>): Promise<{ recordId: string, personId: number }> {
  return await syncedRecord(harness, 'lead', fields)
}

async function twoLeadPassesLater (): Promise<void> {
  const { version } = await checkpoints.load(leadCheckpoint)
  await eventually(async () => (await checkpoints.load(leadCheckpoint)).version >= version + 2 ? true : undefined, { timeoutMs: 5_000, what: 'two more lead passes' })
}

async function parkedEntry (recordId: string): Promise<DynamicsParkedChange> {
  const entry = await eventually(async () => await parked.get(parkedChangeId('dynamics-to-marketo', 'lead', recordId)), { timeoutMs: 5_000, what: 'the parked record' })
  if (entry.direction !== 'dynamics-to-marketo') throw new Error('parked in the wrong direction')
  return entry
}

async function entryCleared (recordId: string): Promise<void> {
  await eventually(async () => await parked.get(parkedChangeId('dynamics-to-marketo', 'lead', recordId)) === undefined ? true : undefined, { timeoutMs: 5_000, what: 'the entry cleared' })
}

/** What the admin API will hand the retry: the service's own clients and stores, as the worker builds them. */
async function retryDeps (): Promise<DynamicsParkedChangeRetryDeps> {
  const logger = pino({ level: 'silent' })
  const dataverse = createDataverseClient(config, logger)
  const fingerprintKey = new Uint8Array(hkdfSync('sha256', config.redis.keyHashSecret, 'marketo-dynamics-sync', 'field-fingerprint', 32))
  return {
    dataverse,
    marketo: createMarketoRestClient(config),
    parked,
    links: new RecordLinkStore(redis, prefix),
    pairs: new PairStateStore(redis, prefix),
    mapping: readFieldMappingFile(config.sync.fieldMappingFile),
    fingerprinter: (pairId) => fieldFingerprinter(fingerprintKey, pairId),
    serviceUserId: await dataverse.whoAmI(),
    syncFilterTables: new Set(await readSyncFilterTables(dataverse)),
    logger
  }
}

let ada = { recordId: '', personId: 0 }

t.test('an email Marketo refuses (1003): parked with Marketo\'s code, the rest of the page delivered, the checkpoint advanced', async (t) => {
  ada = await linkedLead({ firstname: 'Ada', lastname: 'Lovelace', emailaddress1: 'ada.lovelace@example.com', jobtitle: 'Analyst' })
  const mary = await linkedLead({ lastname: 'Somerville', emailaddress1: 'mary.somerville@example.com', jobtitle: 'Astronomer' })
  await worker.close()
  const before = await checkpoints.load(leadCheckpoint)
  sandbox.dataverse.store.update('leads', ada.recordId, { emailaddress1: 'ada.lövelace@example.com', jobtitle: 'Countess', _modifiedby_value: dana })
  sandbox.dataverse.store.update('leads', mary.recordId, { jobtitle: 'Polymath', _modifiedby_value: dana })
  worker = harness.startWorker()

  await eventually(() => sandbox.marketo.persons.get(mary.personId)?.title === 'Polymath' ? true : undefined, { timeoutMs: 5_000, what: 'the other record of the page' })
  const entry = await parkedEntry(ada.recordId)
  t.match(entry, { direction: 'dynamics-to-marketo', table: 'lead', recordId: ada.recordId, personIds: [ada.personId], code: '1003', attempts: 1 })
  t.same([...entry.fields].sort(), ['email', 'title'], 'the fields of the refused update, by name')
  t.same([...entry.columns].sort(), ['emailaddress1', 'jobtitle'])
  t.ok((await checkpoints.load(leadCheckpoint)).version > before.version, 'the checkpoint advanced past the refused record')
  t.match(sandbox.marketo.persons.get(ada.personId), { email: 'ada.lovelace@example.com', title: 'Analyst' }, 'the refused person is left as it was')

  await twoLeadPassesLater()
  t.equal((await parkedEntry(ada.recordId)).attempts, 1, 'not retried by every pass')
})

t.test('fixed in Dynamics, the record\'s next change delivers it and clears the entry', async (t) => {
  sandbox.dataverse.store.update('leads', ada.recordId, { emailaddress1: 'ada.byron@example.com', _modifiedby_value: dana })
  await entryCleared(ada.recordId)
  t.match(sandbox.marketo.persons.get(ada.personId), { email: 'ada.byron@example.com', title: 'Countess' }, 'the fixed email and the title refused with it')
})

t.test('a retry before the fix is refused again; after a fix in Dynamics, a retry delivers it and clears the entry', async (t) => {
  const grace = await linkedLead({ lastname: 'Hopper', emailaddress1: 'grace.hopper@example.com', jobtitle: 'Programmer' })
  sandbox.dataverse.store.update('leads', grace.recordId, { emailaddress1: 'grâce.hopper@example.com', _modifiedby_value: dana })
  const id = (await parkedEntry(grace.recordId)).id

  // The worker is stopped: the retry, not a pass, must deliver the fix.
  await worker.close()
  t.equal(await retryDynamicsParkedChange(await retryDeps(), id), 'refused')
  t.match(await parkedEntry(grace.recordId), { code: '1003', attempts: 2 })

  sandbox.dataverse.store.update('leads', grace.recordId, { emailaddress1: 'rear.admiral.hopper@example.com', _modifiedby_value: dana })
  t.equal(await retryDynamicsParkedChange(await retryDeps(), id), 'delivered')
  t.equal(sandbox.marketo.persons.get(grace.personId)?.email, 'rear.admiral.hopper@example.com')
  t.equal(await parked.get(id), undefined, 'the entry is cleared')
  await t.rejects(retryDynamicsParkedChange(await retryDeps(), id), { code: 'PARKED_CHANGE_NOT_FOUND' })

  worker = harness.startWorker()
  const updatedAt = sandbox.marketo.persons.get(grace.personId)?.updatedAt
  await twoLeadPassesLater()
  t.equal(sandbox.marketo.persons.get(grace.personId)?.updatedAt, updatedAt, 'the pass that reads the fix finds it delivered: no second write')
  t.equal(await parked.get(id), undefined)
})

t.test('an email two unlinked persons have: parked SEVERAL_UNLINKED_PERSONS with both; once one is gone, a retry links the record', async (t) => {
  const first = sandbox.marketo.persons.create({ email: 'caroline.herschel@example.com', lastName: 'Herschel' })
  const second = sandbox.marketo.persons.create({ email: 'caroline.herschel@example.com', lastName: 'Herschel' })
  const leadId = sandbox.dataverse.store.insert('leads', { lastname: 'Herschel', emailaddress1: 'caroline.herschel@example.com', jobtitle: 'Astronomer', _modifiedby_value: dana })
  const entry = await parkedEntry(leadId)
  t.match(entry, { code: 'SEVERAL_UNLINKED_PERSONS', personIds: [first, second], fields: ['email'], columns: ['emailaddress1'], attempts: 1 })
  t.equal(await redis.get(recordLinkKey(prefix, 'lead', leadId)), null, 'not linked')

  // The marketer merges the duplicates (Marketo keeps one person).
  sandbox.marketo.persons.remove(second)
  t.equal(await retryDynamicsParkedChange(await retryDeps(), entry.id), 'delivered')
  t.equal(await redis.get(recordLinkKey(prefix, 'lead', leadId)), String(first), 'linked to the one person left')
  t.equal(sandbox.marketo.persons.get(first)?.title, 'Astronomer')
  t.equal(await parked.get(entry.id), undefined)
})

t.test('a lead without an email: parked NO_EMAIL; given an email, its next change creates the person and clears the entry', async (t) => {
  const leadId = sandbox.dataverse.store.insert('leads', { lastname: 'Hypatia', jobtitle: 'Philosopher', _modifiedby_value: dana })
  t.match(await parkedEntry(leadId), { code: 'NO_EMAIL', personIds: [], fields: ['email'], columns: ['emailaddress1'], attempts: 1 })

  sandbox.dataverse.store.update('leads', leadId, { emailaddress1: 'hypatia@example.com', _modifiedby_value: dana })
  await entryCleared(leadId)
  const personId = Number(await redis.get(recordLinkKey(prefix, 'lead', leadId)))
  t.match(sandbox.marketo.persons.get(personId), { email: 'hypatia@example.com', lastName: 'Hypatia', title: 'Philosopher' })
})

t.test('a new lead whose create Marketo refuses (1003): parked with no person, nothing created', async (t) => {
  const persons = sandbox.marketo.persons.list().length
  const leadId = sandbox.dataverse.store.insert('leads', { lastname: 'Noether', emailaddress1: 'emmy.nöether@example.com', jobtitle: 'Mathematician', _modifiedby_value: dana })
  const entry = await parkedEntry(leadId)
  t.match(entry, { code: '1003', personIds: [], attempts: 1 })
  t.ok(entry.fields.includes('email') && entry.fields.includes('title'), 'the fields the create carried')
  t.equal(sandbox.marketo.persons.list().length, persons, 'no person created')

  sandbox.dataverse.store.update('leads', leadId, { emailaddress1: 'emmy.noether@example.com', _modifiedby_value: dana })
  await entryCleared(leadId)
  t.equal(sandbox.marketo.persons.findByEmail('emmy.noether@example.com')?.title, 'Mathematician', 'created once its email is fixed')
})

t.test('no email, value or Marketo message in the parked entries or the logs', async (t) => {
  // One more entry that stays, so the store is not empty when read.
  const leadId = sandbox.dataverse.store.insert('leads', { lastname: 'Nameless', jobtitle: 'Unknown Scholar', _modifiedby_value: dana })
  await parkedEntry(leadId)
  const keys = await redis.keys(`${parkedChangeKeys(prefix).entry('dynamics-to-marketo')}*`)
  t.ok(keys.length > 0)
  const stored = JSON.stringify([keys, await Promise.all(keys.map(async (key) => await redis.hgetall(key))), await redis.zrange(parkedChangeKeys(prefix).index, '0', '-1')])
  for (const personal of ['@', 'example.com', 'Nameless', 'Scholar', 'Hopper', 'nöether', 'Invalid data']) t.notOk(stored.includes(personal), `no ${personal} in Redis`)
  const logs = harness.logText()
  for (const personal of ['example.com', 'Lovelace', 'Countess', 'Nameless', 'Invalid data']) t.notOk(logs.includes(personal), `no ${personal} in the logs`)
  t.ok(harness.logs().some((line) => line.msg === 'Marketo refused a background-sync update' && JSON.stringify(line.reasons) === '["1003"]'), 'the refusal is logged, by code')
})
