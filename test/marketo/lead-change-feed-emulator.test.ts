import t, { type Test } from 'tap'
import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import Marketo from 'node-marketo-rest'
import { startMarketoEmulator, type MarketoEmulator } from '../../sandbox/marketo/index.ts'
import { readLeadChanges } from '../../src/marketo/lead-change-feed.ts'
import { MarketoApiError } from '../../src/marketo/marketo-errors.ts'
import { MarketoRestClient } from '../../src/marketo/marketo-rest-client.ts'

/**
 * Reading Marketo's lead-change feed through our client, over HTTP, from the Marketo emulator
 * (marketo-rest-and-ssfs.md §2.6): a marketer's edit is a user change, a REST write is marked as
 * made through the API with its request, and a feed longer than a page is read page by page.
 */

const credentials = { clientId: 'sync-client', clientSecret: 'sync-secret' }
const seededAt = Date.parse('2026-03-02T09:00:00Z')

interface Scenario {
  readonly emulator: MarketoEmulator
  readonly client: MarketoRestClient
  /** Another integration's REST user (an unmodified node-marketo-rest) writing to the same instance. */
  readonly restWriter: Marketo
  /** A paging token from after the seeding, so the feed starts with this scenario's own changes. */
  readonly startToken: string
}

/**
 * The emulator's clock is held still and moved by hand: Marketo's dates are whole seconds, and the
 * seeded persons' New Lead activities must fall before the scenario's paging token.
 */
async function startScenario (t: Test, seedPersons: Array<Record<string, unknown>>): Promise<Scenario> {
  let clock = seededAt
  const emulator = await startMarketoEmulator({ munchkinId: '123-ABC-456', clients: [credentials], seedPersons, now: () => new Date(clock) })
  t.teardown(() => emulator.close())
  clock += 10_000
  const client = new MarketoRestClient({ baseUrl: emulator.url, ...credentials })
  const startToken = await client.getActivitiesPagingToken(new Date(seededAt + 5_000))
  const restWriter = new Marketo({ endpoint: emulator.restUrl, identity: emulator.identityUrl, ...credentials, retry: { maxRetries: 0 } })
  return { emulator, client, restWriter, startToken }
}

async function marketerEdits (emulator: MarketoEmulator, personId: number, fields: Record<string, unknown>): Promise<void> {
  const response = await fetch(`${emulator.url}/_emulator/persons/${personId}`, { method: 'PATCH', body: JSON.stringify({ fields }) })
  if (response.status !== 200) throw new Error(`the marketer's edit was refused: HTTP ${response.status}`)
}

const seeds = [
  { email: 'ann.lee@example.com', firstName: 'Ann', title: 'CFO' },
  { email: 'bo.chen@example.com', firstName: 'Bo', title: 'CTO' }
]

t.test('a marketer\'s edit in Marketo is read as a user change, with the field\'s new value', async (t) => {
  const { emulator, client, startToken } = await startScenario(t, seeds)
  await marketerEdits(emulator, 1000, { title: 'VP Sales', city: 'Oslo' })

  const read = await readLeadChanges(client, { pageToken: startToken, fields: ['title', 'firstName'] })

  t.same(read.persons, [{
    personId: 1000,
    isNew: false,
    createdThroughApi: false,
    fields: { title: { value: 'VP Sales', changedAt: '2026-03-02T09:00:10Z', madeThroughApi: false } }
  }], 'the unmapped city change is not read')
  t.equal(read.moreResult, false)
  t.same(read.skipped, [])
})

t.test('a write through the REST API is read as made through the API, naming the request that made it', async (t) => {
  const { emulator, client, restWriter, startToken } = await startScenario(t, seeds)
  const written = await restWriter.lead.createOrUpdate([{ email: 'bo.chen@example.com', title: 'CEO' }], { action: 'updateOnly', lookupField: 'email' })
  await marketerEdits(emulator, 1000, { title: 'VP Sales' })

  const read = await readLeadChanges(client, { pageToken: startToken, fields: ['title'] })

  t.same(read.persons.map((person) => [person.personId, person.fields.title]), [
    [1001, { value: 'CEO', changedAt: '2026-03-02T09:00:10Z', madeThroughApi: true, apiRequestId: written.requestId }],
    [1000, { value: 'VP Sales', changedAt: '2026-03-02T09:00:10Z', madeThroughApi: false }]
  ])
})

t.test('one field edited by the API and then by a marketer in one page: the marketer\'s value, as a user change', async (t) => {
  const { emulator, client, restWriter, startToken } = await startScenario(t, seeds)
  await restWriter.lead.createOrUpdate([{ email: 'ann.lee@example.com', title: 'CEO' }], { action: 'updateOnly', lookupField: 'email' })
  await marketerEdits(emulator, 1000, { title: 'Chair' })

  const read = await readLeadChanges(client, { pageToken: startToken, fields: ['title'] })

  t.same(read.persons, [{
    personId: 1000,
    isNew: false,
    createdThroughApi: false,
    fields: { title: { value: 'Chair', changedAt: '2026-03-02T09:00:10Z', madeThroughApi: false } }
  }])
})

t.test('persons new since the token are reported as new: made through the API or in Marketo', async (t) => {
  const { emulator, client, restWriter, startToken } = await startScenario(t, seeds)
  const created = await restWriter.lead.createOrUpdate([{ email: 'cy.diaz@example.com', firstName: 'Cy' }], { action: 'createOnly', lookupField: 'email' })
  const byApi = created.result?.[0]?.id
  const imported = await fetch(`${emulator.url}/_emulator/persons`, { method: 'POST', body: JSON.stringify({ fields: { email: 'di.evans@example.com' } }) })
  const inMarketo = (await imported.json() as { id: number }).id

  const read = await readLeadChanges(client, { pageToken: startToken, fields: ['firstName'] })

  t.same(read.persons, [
    { personId: byApi, isNew: true, createdThroughApi: true, fields: {} },
    { personId: inMarketo, isNew: true, createdThroughApi: false, fields: {} }
  ], 'Marketo logs no value change for the values a person is created with: the reader reads those persons')
})

t.test('a feed longer than a page is read page by page, and the last token reads only what comes after', async (t) => {
  const persons = Array.from({ length: 7 }, (_, i) => ({ email: `reader${i}@example.com`, title: 'Analyst' }))
  const { emulator, client, startToken } = await startScenario(t, persons)
  for (let i = 0; i < persons.length; i++) await marketerEdits(emulator, 1000 + i, { title: `Lead analyst ${i}` })
  const callsBefore = client.restCallCount

  const pages = []
  let token = startToken
  for (let page = 0; page < 10; page++) {
    const read = await readLeadChanges(client, { pageToken: token, fields: ['title'], batchSize: 3 })
    pages.push(read)
    token = read.nextPageToken
    if (!read.moreResult) break
  }

  t.same(pages.map((page) => page.persons.length), [3, 3, 1])
  t.same(pages.map((page) => page.moreResult), [true, true, false])
  t.same(pages.flatMap((page) => page.persons.map((person) => [person.personId, person.fields.title?.value])),
    persons.map((_, i) => [1000 + i, `Lead analyst ${i}`]), 'every change once, in order')
  t.equal(client.restCallCount - callsBefore, 3, 'one call per page')

  const caughtUp = await readLeadChanges(client, { pageToken: token, fields: ['title'] })
  t.same(caughtUp.persons, [], 'the saved token reads nothing twice')
  t.equal(caughtUp.moreResult, false)
  t.type(caughtUp.nextPageToken, 'string')

  await marketerEdits(emulator, 1003, { title: 'Head of data' })
  const later = await readLeadChanges(client, { pageToken: caughtUp.nextPageToken, fields: ['title'] })
  t.same(later.persons.map((person) => [person.personId, person.fields.title?.value]), [[1003, 'Head of data']])
})

t.test('an answer without a nextPageToken is an error with a code, not a feed that silently restarts', async (t) => {
  const server = createServer((request, response) => {
    const body = (request.url ?? '').startsWith('/identity/')
      ? { access_token: 'token-1', token_type: 'bearer', expires_in: 3600 }
      : { requestId: '1#1', success: true, result: [], moreResult: false }
    response.writeHead(200, { 'Content-Type': 'application/json;charset=UTF-8' }).end(JSON.stringify(body))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => {
    server.closeAllConnections()
    server.close()
  })
  const client = new MarketoRestClient({ baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, ...credentials })

  const error = await readLeadChanges(client, { pageToken: 'TOKEN', fields: ['title'] }).catch((e: unknown) => e)

  t.type(error, MarketoApiError)
  t.match(error, { code: 'MISSING_NEXT_PAGE_TOKEN' })
})
