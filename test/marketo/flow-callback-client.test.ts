import t from 'tap'
import { createServer, type Server } from 'node:http'
import { once } from 'node:events'
import { sendFlowCallback } from '../../src/marketo/flow-callback-client.ts'
import { CallbackUndeliveredError } from '../../src/marketo/marketo-errors.ts'

/**
 * The callback carries Marketo's one-time token and callback key to a URL that passed the
 * allow-list. A redirect would take them to a host nobody checked, so the client follows none:
 * the redirect's target must never see a request.
 */

async function listen (server: Server): Promise<string> {
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`
}

const targetRequests: Array<{ url?: string, token?: string | string[] }> = []
const target = createServer((req, res) => { targetRequests.push({ url: req.url, token: req.headers['x-callback-token'] }); res.end() })
const targetUrl = await listen(target)
let status = 302
const redirecting = createServer((req, res) => {
  req.resume()
  res.writeHead(status, { location: `${targetUrl}/stolen` }).end()
})
const redirectingUrl = await listen(redirecting)
t.teardown(() => { target.close(); redirecting.close() })

const body = { munchkinId: '123-ABC-456', objectData: [{ leadData: { id: 1 }, activityData: { success: true, outcome: 'created' } }] }

for (const redirect of [301, 302, 303, 307, 308]) {
  t.test(`a ${redirect} from the callback URL is not followed and the delivery counts as failed`, async (t) => {
    status = redirect
    const error = await sendFlowCallback(`${redirectingUrl}/callback`, { token: 'one-time-token', apiCallBackKey: 'callback-key' }, body, { timeoutMs: 5_000 })
      .then(() => undefined, (caught: unknown) => caught)
    t.ok(error instanceof CallbackUndeliveredError, 'undelivered, so the job retries rather than reports success')
    t.match((error as Error).message, /redirect/)
    t.same(targetRequests, [], 'the redirect target saw no request (and so no token)')
  })
}
