import t from 'tap'
import pino from 'pino'
import { startDataverseEmulator, type DataverseEmulator } from '../../sandbox/dataverse/index.ts'
import { DataverseClient } from '../../src/dynamics/dataverse-client.ts'
import { PersonRecords } from '../../src/dynamics/person-records.ts'

/**
 * Leads and contacts by email, against the Dataverse emulator over real HTTP, counting the
 * requests it receives.
 */

const JUNK = 'test@test.com'

/** `count` leads sharing the junk email, all older than anything else in the table. */
function junkLeads (count: number): Array<Record<string, unknown>> {
  return Array.from({ length: count }, (_, i) => ({
    lastname: `Junk ${i}`,
    emailaddress1: i % 2 === 0 ? JUNK : JUNK.toUpperCase(),
    createdon: new Date(Date.UTC(2019, 0, 1) + i * 1000).toISOString().replace(/\.\d+Z$/, 'Z')
  }))
}

/** 39 ordinary people: a lead each, a contact for one of them, and one with nothing in Dynamics. */
const ordinary = Array.from({ length: 38 }, (_, i) => `person${i}@example.com`)
const seedRest = {
  leads: ordinary.map((email, i) => ({ lastname: `Person ${i}`, emailaddress1: email, createdon: '2024-05-01T00:00:00Z' })),
  contacts: [
    { lastname: 'Contact', emailaddress1: ordinary[0], createdon: '2024-06-01T00:00:00Z' },
    { lastname: 'Junk contact', emailaddress1: JUNK, createdon: '2018-01-01T00:00:00Z' }
  ]
}

async function emulatorWith (junk: number): Promise<DataverseEmulator> {
  const emulator = await startDataverseEmulator({ seed: { leads: [...junkLeads(junk), ...seedRest.leads], contacts: seedRest.contacts } })
  t.teardown(async () => { await emulator.close() })
  return emulator
}

function recordsOf (emulator: DataverseEmulator): PersonRecords {
  return new PersonRecords(new DataverseClient({
    url: emulator.url,
    tokens: { getAccessToken: async () => 'any-bearer-the-emulator-accepts' },
    logger: pino({ level: 'silent' }),
    maxConcurrentRequests: 4,
    requestTimeoutMs: 10_000
  }))
}

const emails = [JUNK, ...ordinary, 'nobody@example.com']

t.test('a junk email on thousands of leads costs the same few requests as on a few hundred, and every other email of the batch is still found', async (t) => {
  const cost = async (junk: number) => {
    const emulator = await emulatorWith(junk)
    const records = recordsOf(emulator)
    const found = await records.findByEmails(emails)
    const oldestJunk = emulator.store.list('leads').find((row) => row.lastname === 'Junk 0')
    t.same(found.get(JUNK), { lead: { type: 'Lead', id: String(oldestJunk?.leadid) }, contact: found.get(JUNK)?.contact }, `the oldest of ${junk} junk leads`)
    t.equal(found.get(JUNK)?.contact?.type, 'Contact')
    t.equal(found.get(ordinary[0]!)?.contact?.type, 'Contact', 'a lead and a contact for one email: both reported')
    t.ok(ordinary.every((email) => found.get(email)?.lead?.type === 'Lead'), 'every ordinary person\'s lead is found')
    t.equal(found.has('nobody@example.com'), false)
    return emulator.requestCount({ method: 'GET', entitySet: 'leads' })
  }
  const few = await cost(300)
  const many = await cost(12_000)
  t.equal(many, few, 'the cost does not grow with the junk email\'s records')
  t.ok(many <= 2, `leads asked at most twice for 40 emails (${many})`)
})

t.test('an ordinary batch of 40 emails costs one request per table', async (t) => {
  const emulator = await emulatorWith(0)
  await recordsOf(emulator).findByEmails(emails.slice(1))
  t.equal(emulator.requestCount({ method: 'GET', entitySet: 'leads' }), 1)
  t.equal(emulator.requestCount({ method: 'GET', entitySet: 'contacts' }), 1)
})
