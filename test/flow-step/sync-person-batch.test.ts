import t from 'tap'
import pino from 'pino'
import { Redis } from 'ioredis'
import { startLocalRedis } from '../../sandbox/redis-server.ts'
import { startDataverseEmulator } from '../../sandbox/dataverse/index.ts'
import { PersonRecords, type EmailMatches } from '../../src/dynamics/person-records.ts'
import { RecordLinkStore } from '../../src/links/record-link-store.ts'
import { EmailClaims } from '../../src/flow-step/email-claims.ts'
import { syncPersonBatch, type SyncPersonBatchDeps } from '../../src/flow-step/sync-person-batch.ts'
import type { FlowStepPerson } from '../../src/domain/person.ts'
import { dataverseTestClient } from '../helpers/dataverse-test-client.ts'

/**
 * The flow step's I/O around its decisions, on a real Redis and the Dataverse emulator over HTTP.
 */

const redisServer = await startLocalRedis()
const redis = new Redis(redisServer.url)
/** Any 32 characters: what matters is that every EmailClaims of the test holds the same one. */
const KEY_HASH_SECRET = 'test-key-hash-secret-'.padEnd(32, 'x')

const emulator = await startDataverseEmulator({})
t.teardown(async () => {
  redis.disconnect()
  await redisServer.stop()
  await emulator.close()
})
t.afterEach(() => { emulator.faults.clear() })

const client = dataverseTestClient(emulator.url, { requestTimeoutMs: 5_000, retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 5 } })

let prefixes = 0
function depsFor (records: PersonRecords = new PersonRecords(client)): SyncPersonBatchDeps & { prefix: string } {
  const prefix = `t${++prefixes}`
  return {
    prefix,
    records,
    marketo: { getLeadsByIds: async () => { throw new Error('every person here has an email') } },
    links: new RecordLinkStore(redis, prefix),
    // The default TTL: a claim left to lapse would keep the next claimant waiting 30 s.
    claims: new EmailClaims(redis, prefix, { keyHashSecret: KEY_HASH_SECRET, pollIntervalMs: 5 }),
    logger: pino({ level: 'silent' })
  }
}

const person = (marketoId: number, email: string): FlowStepPerson => ({ marketoId, syncAs: 'Lead', fields: { email, lastName: `Person ${marketoId}` } })

t.test('a look-up that fails while the claim is held releases the claim at once: the next claimant does not wait out its TTL', async (t) => {
  const email = 'relooked@example.com'
  let lookUps = 0
  // Between the batch's first look-up and its claim, another worker claims the email and lets go
  // of it without a record, so the batch must look Dynamics up again; that second look-up fails.
  class RecordsWithAnotherClaimant extends PersonRecords {
    override async findByEmails (emails: readonly string[]): Promise<Map<string, EmailMatches>> {
      const first = ++lookUps === 1
      const found = await super.findByEmails(emails)
      if (first) {
        const other = await deps.claims.claim(email, 'inv-other', 0)
        if (other.kind === 'claimed') await other.release()
        emulator.faults.failNext(100, 503)
      }
      return found
    }
  }
  const deps = depsFor(new RecordsWithAnotherClaimant(client))

  const [outcome] = await syncPersonBatch('inv-relook', [person(1, email)], deps)
  t.equal(lookUps, 2, 'the batch looked again before creating')
  t.match(outcome, { marketoId: 1, kind: 'failed', errorCode: 'LOOKUP_FAILED', retryable: true })
  t.equal(emulator.store.list('leads').filter((row) => row.emailaddress1 === email).length, 0, 'nothing was created')

  emulator.faults.clear()
  const impatient = new EmailClaims(redis, deps.prefix, { keyHashSecret: KEY_HASH_SECRET, pollIntervalMs: 5, waitTimeoutMs: 1_000 })
  const [generation] = (await impatient.generations([email])).values()
  const next = await impatient.claim(email, 'inv-next', generation!)
  t.match(next, { kind: 'claimed' }, 'the claim was free at once')
  if (next.kind === 'claimed') await next.release()

  const [retried] = await syncPersonBatch('inv-relook', [person(1, email)], depsFor())
  t.match(retried, { kind: 'created', recordType: 'Lead' }, 'the retry creates the person')
})

t.test('a person whose linked lead was deleted in Dynamics is created again, and linked to the new lead', async (t) => {
  const deps = depsFor()
  const deletedId = emulator.store.insert('leads', { lastname: 'Deleted', emailaddress1: 'deleted.later@example.com' })
  await deps.links.set(7, { type: 'Lead', id: deletedId })
  // Deleted in Dynamics, as a user would: over the Web API.
  const deleted = await fetch(`${emulator.url}/api/data/v9.2/leads(${deletedId})`, { method: 'DELETE', headers: { Authorization: 'Bearer any' } })
  t.equal(deleted.status, 204)

  const [outcome] = await syncPersonBatch('inv-deleted', [person(7, 'deleted.later@example.com')], deps)
  t.match(outcome, { marketoId: 7, kind: 'created', recordType: 'Lead' })
  t.not(outcome?.recordId, deletedId)
  t.same((await deps.links.getMany([7])).get(7), { type: 'Lead', id: outcome?.recordId })
})

t.test('an email with both a lead and a contact: the person is the contact and nothing is created', async (t) => {
  emulator.store.insert('leads', { lastname: 'Both', emailaddress1: 'both@example.com' })
  const contactId = emulator.store.insert('contacts', { lastname: 'Both', emailaddress1: 'both@example.com' })
  const before = emulator.requestCount({ method: 'POST' })
  const outcomes = await syncPersonBatch('inv-both', [person(8, 'both@example.com'), person(9, 'BOTH@example.com'), person(8, 'both@example.com')], depsFor())
  t.same(outcomes, [
    { marketoId: 8, kind: 'existed', recordType: 'Contact', recordId: contactId },
    { marketoId: 9, kind: 'existed', recordType: 'Contact', recordId: contactId }
  ], 'each person once, the one listed twice reported once')
  t.equal(emulator.requestCount({ method: 'POST' }), before)
})
