import t from 'tap'
import { once } from 'node:events'
import { createServer, type RequestListener, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { startMarketoEmulator } from '../../sandbox/marketo/index.ts'
import { MarketoRestClient } from '../../src/marketo/marketo-rest-client.ts'
import { MarketoApiError, MarketoAuthError, MarketoRedirectError } from '../../src/marketo/marketo-errors.ts'

/** The Marketo REST client against the emulator: tokens, batching and typed errors. */

const emulator = await startMarketoEmulator({ munchkinId: '123-ABC-456', clients: [{ clientId: 'cid', clientSecret: 'secret' }] })
t.teardown(async () => { await emulator.close() })
const client = () => new MarketoRestClient({ baseUrl: emulator.url, clientId: 'cid', clientSecret: 'secret' })

t.test('300 emails whose query passes 8 KB are read in one call, as a POST with _method=GET instead of a 414', async (t) => {
  const emails = Array.from({ length: 300 }, (_, i) => `a.rather.long.address.${i}@subsidiary.example.com`)
  for (const email of emails.slice(0, 3)) emulator.persons.create({ email })
  const reader = client()
  const callsBefore = reader.restCallCount
  const leads = await reader.getLeadsBy('email', emails, ['email'])
  t.ok(emails.join(',').length > 8 * 1024, 'the values alone pass 8 KB')
  t.same(leads.map((lead) => lead.email).sort(), emails.slice(0, 3).sort())
  t.equal(reader.restCallCount - callsBefore, 1, 'one call for the 300')
})

t.test('persons are read by id, 300 to a call, with one identity call for all of them', async (t) => {
  const ids = Array.from({ length: 301 }, (_, i) => emulator.persons.create({ email: `reader${i}@example.com`, firstName: `R${i}` }))
  const reader = client()
  const identityBefore = emulator.identityRequestCount()
  const leads = await reader.getLeadsByIds(ids, ['email', 'firstName'])
  t.equal(leads.length, 301)
  t.match(leads[0], { id: ids[0], email: 'reader0@example.com', firstName: 'R0' })
  t.equal(reader.restCallCount, 2, 'two calls for 301 persons')
  t.equal(emulator.identityRequestCount() - identityBefore, 1)
})

t.test('an expired token (602) is replaced once and the call repeated', async (t) => {
  const reader = client()
  const id = emulator.persons.create({ email: 'expiry@example.com' })
  await reader.getLeadsByIds([id], ['email'])
  emulator.expireTokens()
  const identityBefore = emulator.identityRequestCount()
  t.match(await reader.getLeadsByIds([id], ['email']), [{ email: 'expiry@example.com' }])
  t.equal(emulator.identityRequestCount() - identityBefore, 1)
})

t.test('Marketo errors arrive typed, with Marketo\'s code', async (t) => {
  emulator.faults.rateLimitNext(1)
  const error = await client().getLeadsByIds([1], ['email']).catch((e: unknown) => e)
  t.type(error, MarketoApiError)
  t.match(error, { code: '606' })
})

t.test('bad client credentials are an authentication error that names no secret', async (t) => {
  const error = await new MarketoRestClient({ baseUrl: emulator.url, clientId: 'cid', clientSecret: 'wrong-secret' }).getLeadsByIds([1], ['email']).catch((e: unknown) => e)
  t.type(error, MarketoAuthError)
  t.notMatch((error as Error).message, /wrong-secret/)
})

async function listen (t: { teardown: (fn: () => void) => void }, handler: RequestListener): Promise<string> {
  const server: Server = createServer(handler)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => {
    server.closeAllConnections()
    server.close()
  })
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

/** Another host that records whether a redirect led anyone to it. */
async function recordingTarget (t: { teardown: (fn: () => void) => void }): Promise<{ url: string, requests: string[] }> {
  const requests: string[] = []
  const url = await listen(t, (request, response) => {
    requests.push(`${request.method ?? ''} ${request.url ?? ''} ${request.headers.authorization ?? ''}`)
    response.writeHead(200, { 'Content-Type': 'application/json' }).end('{"success":true,"result":[],"access_token":"stolen","expires_in":3600}')
  })
  return { url, requests }
}

t.test('a redirect from the identity endpoint is an error with a code, and the client secret goes nowhere else', async (t) => {
  const target = await recordingTarget(t)
  const base = await listen(t, (request, response) => {
    response.writeHead(302, { Location: `${target.url}${request.url ?? '/'}` }).end()
  })
  const error = await new MarketoRestClient({ baseUrl: base, clientId: 'cid', clientSecret: 'secret' }).getLeadsByIds([1], ['email']).catch((e: unknown) => e)
  t.type(error, MarketoRedirectError)
  t.match(error, { code: 'MARKETO_REDIRECT', status: 302 })
  t.same(target.requests, [], 'the redirect was not followed')
})

t.test('a redirect from a REST call is an error with a code, and the bearer token goes nowhere else', async (t) => {
  const target = await recordingTarget(t)
  const base = await listen(t, (request, response) => {
    if (request.url?.startsWith('/identity/') === true) {
      response.writeHead(200, { 'Content-Type': 'application/json' }).end('{"access_token":"real-token","token_type":"bearer","expires_in":3600}')
      return
    }
    response.writeHead(307, { Location: `${target.url}${request.url ?? '/'}` }).end()
  })
  const error = await new MarketoRestClient({ baseUrl: base, clientId: 'cid', clientSecret: 'secret' }).getLeadsByIds([1], ['email']).catch((e: unknown) => e)
  t.type(error, MarketoRedirectError)
  t.match(error, { code: 'MARKETO_REDIRECT', status: 307 })
  t.same(target.requests, [], 'the redirect was not followed')
})
