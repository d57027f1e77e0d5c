import t from 'tap'
import type { DataverseEmulator } from '../../sandbox/dataverse/index.ts'
import { startedDataverseEmulator } from '../helpers/dataverse-emulator.ts'

/**
 * The Dataverse emulator's `$batch` (reference doc §3, PAD execute-batch-operations-using-web-api.md)
 * over real HTTP with plain fetch: multipart/mixed with CRLF lines, GETs outside change sets, change
 * sets all-or-nothing with `Content-ID`/`$n`, the 1,000-request cap, stop at the first error unless
 * `Prefer: odata.continue-on-error`.
 */

const TOKEN = 'Bearer sandbox-token'
const CRLF = '\r\n'

const started = startedDataverseEmulator

interface Op { method: string, target: string, body?: unknown, contentId?: string, headers?: Record<string, string> }

function operationPart (op: Op): string[] {
  const lines = ['Content-Type: application/http', 'Content-Transfer-Encoding: binary']
  if (op.contentId !== undefined) lines.push(`Content-ID: ${op.contentId}`)
  lines.push('', `${op.method} ${op.target} HTTP/1.1`)
  if (op.body !== undefined) lines.push('Content-Type: application/json; type=entry')
  for (const [name, value] of Object.entries(op.headers ?? {})) lines.push(`${name}: ${value}`)
  lines.push('')
  if (op.body !== undefined) lines.push(JSON.stringify(op.body))
  return lines
}

/** A batch body as Microsoft's doc writes it: each entry a request or a change set (array). */
function batchBody (entries: Array<Op | Op[]>): string {
  const lines: string[] = []
  entries.forEach((entry, index) => {
    lines.push('--batch_AAA123')
    if (Array.isArray(entry)) {
      lines.push(`Content-Type: multipart/mixed; boundary="changeset_${index}"`, '')
      for (const op of entry) lines.push(`--changeset_${index}`, ...operationPart(op))
      lines.push(`--changeset_${index}--`)
    } else {
      lines.push(...operationPart(entry))
    }
  })
  lines.push('--batch_AAA123--')
  return lines.join(CRLF) + CRLF
}

interface BatchReply { status: number, contentType: string, text: string }

async function postBatch (emulator: DataverseEmulator, body: string, headers: Record<string, string> = {}): Promise<BatchReply> {
  const response = await fetch(`${emulator.url}/api/data/v9.2/$batch`, {
    method: 'POST',
    headers: {
      Authorization: TOKEN,
      'OData-Version': '4.0',
      Accept: 'application/json',
      'Content-Type': 'multipart/mixed; boundary="batch_AAA123"',
      ...headers
    },
    body
  })
  return { status: response.status, contentType: response.headers.get('content-type') ?? '', text: await response.text() }
}

/** The status lines of the answer's inner responses, in order. */
function statusLines (text: string): string[] {
  return [...text.matchAll(/^HTTP\/1\.1 (\d{3} [^\r]*)\r$/gm)].map((match) => match[1] ?? '')
}

const leadsPath = '/api/data/v9.2/leads'

t.test('a change set of a create and an update of it through $1 is applied, and a GET after it sees the row', async (t) => {
  const emulator = await started(t)
  const existing = emulator.store.insert('leads', { lastname: 'Old', jobtitle: 'Clerk' })
  const reply = await postBatch(emulator, batchBody([
    [
      { method: 'POST', target: leadsPath, body: { lastname: 'Lovelace', firstname: 'Ada' }, contentId: '1' },
      { method: 'PATCH', target: '$1', body: { jobtitle: 'Analyst' }, contentId: '2' },
      { method: 'PATCH', target: `${emulator.url}/api/data/v9.2/leads(${existing})`, body: { jobtitle: 'CFO' }, contentId: '3' }
    ],
    { method: 'GET', target: `${leadsPath}?$select=lastname,jobtitle&$filter=${encodeURIComponent("lastname eq 'Lovelace'")}`, headers: { Accept: 'application/json' } }
  ]))
  t.equal(reply.status, 200)
  const boundary = /boundary=(batchresponse_[0-9a-f-]+)/.exec(reply.contentType)?.[1]
  t.ok(boundary, 'the answer names its batchresponse boundary')
  t.ok(reply.text.startsWith(`--${boundary}\r\n`), 'the body starts with the delimiter (dynamics-web-api reads it from the first line)')
  t.ok(reply.text.endsWith(`--${boundary}--\r\n`))
  t.notOk(/(^|[^\r])\n/.test(reply.text), 'every line ends in CRLF')
  t.match(reply.text, /Content-Type: multipart\/mixed; boundary=changesetresponse_[0-9a-f-]+\r\n/)
  t.same(statusLines(reply.text), ['204 No Content', '204 No Content', '204 No Content', '200 OK'])
  t.match(reply.text, /Content-ID: 1\r\n\r\nHTTP\/1\.1 204 No Content\r\n/)
  t.match(reply.text, /Content-ID: 3\r\n/)

  const created = emulator.store.list('leads').find((row) => row.lastname === 'Lovelace')
  t.match(created, { firstname: 'Ada', jobtitle: 'Analyst', _createdby_value: emulator.store.defaultUserId })
  t.match(reply.text, new RegExp(`OData-EntityId: ${emulator.url}/api/data/v9.2/leads\\(${String(created?.leadid)}\\)`))
  t.equal(emulator.store.get('leads', existing)?.jobtitle, 'CFO')
  const json = JSON.parse(reply.text.slice(reply.text.indexOf('{'), reply.text.lastIndexOf('}') + 1))
  t.same(json.value.map((row: Record<string, unknown>) => [row.lastname, row.jobtitle]), [['Lovelace', 'Analyst']])
})

t.test('a change set with one failing request applies none of its requests and the batch answers that error', async (t) => {
  const emulator = await started(t, { requiredFields: { leads: ['lastname'] } })
  const kept = emulator.store.insert('leads', { lastname: 'Kept', jobtitle: 'Before' })
  const doomed = emulator.store.insert('leads', { lastname: 'Doomed' })
  const before = emulator.store.list('leads').length
  const reply = await postBatch(emulator, batchBody([
    [
      { method: 'POST', target: leadsPath, body: { lastname: 'Created' }, contentId: '1' },
      { method: 'PATCH', target: `${leadsPath}(${kept})`, body: { jobtitle: 'After' }, contentId: '2' },
      { method: 'DELETE', target: `${leadsPath}(${doomed})`, contentId: '3' },
      { method: 'PATCH', target: `${leadsPath}(${kept})`, body: { lastname: '' }, contentId: '4' }
    ],
    { method: 'GET', target: `${leadsPath}(${kept})` }
  ]))
  t.equal(reply.status, 400, 'processing stopped at the first error, whose status the batch takes')
  t.same(statusLines(reply.text), ['400 Bad Request'], 'one error part for the change set; the GET after it did not run')
  t.match(reply.text, /"code":"0x80040203"/)
  t.notMatch(reply.text, /changesetresponse_/)
  t.equal(emulator.store.list('leads').length, before, 'the create was undone and the delete restored')
  t.match(emulator.store.get('leads', kept), { jobtitle: 'Before', lastname: 'Kept' })
  t.match(emulator.store.get('leads', doomed), { lastname: 'Doomed' })
})

t.test('with Prefer: odata.continue-on-error every request runs, failures inline, and the batch answers 200', async (t) => {
  const emulator = await started(t)
  const missing = '00000000-0000-0000-0000-000000000001'
  const reply = await postBatch(emulator, batchBody([
    { method: 'GET', target: `${leadsPath}(${missing})` },
    [{ method: 'POST', target: leadsPath, body: { lastname: 'First' }, contentId: '1' }],
    [{ method: 'PATCH', target: `${leadsPath}(${missing})`, body: { jobtitle: 'X' }, contentId: '1', headers: { 'If-Match': '*' } }],
    { method: 'POST', target: leadsPath, body: { lastname: 'Second' } }
  ]), { Prefer: 'odata.continue-on-error' })
  t.equal(reply.status, 200)
  t.same(statusLines(reply.text), ['404 Not Found', '204 No Content', '404 Not Found', '204 No Content'])
  t.match(reply.text, new RegExp(`lead With Id = ${missing} Does Not Exist`))
  t.same(emulator.store.list('leads').map((row) => row.lastname).sort(), ['First', 'Second'])
})

t.test('without continue-on-error a failing GET outside a change set stops the batch; what ran before stays', async (t) => {
  const emulator = await started(t)
  const reply = await postBatch(emulator, batchBody([
    { method: 'POST', target: leadsPath, body: { lastname: 'Before' } },
    { method: 'GET', target: '/api/data/v9.2/nosuchset' },
    { method: 'POST', target: leadsPath, body: { lastname: 'After' } }
  ]))
  t.equal(reply.status, 404)
  t.same(statusLines(reply.text), ['204 No Content', '404 Not Found'])
  t.same(emulator.store.list('leads').map((row) => row.lastname), ['Before'])
})

t.test('a $n reference to a later or unknown Content-ID fails that change set', async (t) => {
  const emulator = await started(t)
  const reply = await postBatch(emulator, batchBody([[
    { method: 'POST', target: leadsPath, body: { lastname: 'Undone' }, contentId: '1' },
    { method: 'PATCH', target: '$2', body: { jobtitle: 'X' }, contentId: '3' },
    { method: 'POST', target: leadsPath, body: { lastname: 'Never' }, contentId: '2' }
  ]]))
  t.equal(reply.status, 400)
  t.match(reply.text, /Content-ID Reference: '\$2' does not exist in the batch context\./)
  t.same(emulator.store.list('leads'), [])
})

t.test('a $n reference in an @odata.bind binds the row created earlier in the change set', async (t) => {
  const emulator = await started(t)
  const reply = await postBatch(emulator, batchBody([[
    { method: 'POST', target: '/api/data/v9.2/accounts', body: { name: 'Contoso' }, contentId: '1' },
    { method: 'POST', target: '/api/data/v9.2/contacts', body: { lastname: 'Grace', 'parentcustomerid_account@odata.bind': '$1' }, contentId: '2' }
  ]]))
  t.equal(reply.status, 200)
  const account = emulator.store.list('accounts').find((row) => row.name === 'Contoso')
  const contact = emulator.store.list('contacts').find((row) => row.lastname === 'Grace')
  t.ok(account)
  t.equal(contact?._parentcustomerid_value, account?.accountid)
})

t.test('a batch of more than 1,000 requests is refused whole', async (t) => {
  const emulator = await started(t)
  const ops = Array.from({ length: 1001 }, (): Op => ({ method: 'POST', target: leadsPath, body: { lastname: 'Many' } }))
  const refused = await postBatch(emulator, batchBody([ops]))
  t.equal(refused.status, 400)
  t.match(JSON.parse(refused.text), { error: { message: /exceeds the limit of 1000/ } })
  t.same(emulator.store.list('leads'), [])
  const accepted = await postBatch(emulator, batchBody([ops.slice(1)]))
  t.equal(accepted.status, 200)
  t.equal(emulator.store.list('leads').length, 1000)
})

t.test('malformed batches are refused: bare LF lines, GET inside a change set, no boundary', async (t) => {
  const emulator = await started(t)
  const lf = await postBatch(emulator, batchBody([{ method: 'GET', target: leadsPath }]).replaceAll(CRLF, '\n'))
  t.equal(lf.status, 400)
  t.match(JSON.parse(lf.text), { error: { code: '0x80048d19', message: /Stream was not readable/ } })
  const getInChangeSet = await postBatch(emulator, batchBody([[{ method: 'GET', target: leadsPath }]]))
  t.equal(getInChangeSet.status, 400)
  t.match(JSON.parse(getInChangeSet.text), { error: { message: /GET requests are not allowed inside a change set/ } })
  const noBoundary = await postBatch(emulator, batchBody([{ method: 'GET', target: leadsPath }]), { 'Content-Type': 'application/json' })
  t.equal(noBoundary.status, 400)
})

t.test('writes in a batch are authored by the caller and reported by change tracking like lone writes', async (t) => {
  const emulator = await started(t)
  const start = await fetch(`${emulator.url}/api/data/v9.2/leads?$select=lastname`, {
    headers: { Authorization: TOKEN, Prefer: 'odata.track-changes' }
  })
  const deltaLink = String((await start.json() as Record<string, unknown>)['@odata.deltaLink'])
  const person = emulator.store.insert('systemusers', { lastname: 'Person' })
  const reply = await postBatch(emulator, batchBody([[
    { method: 'POST', target: leadsPath, body: { lastname: 'Tracked' }, contentId: '1', headers: { MSCRMCallerID: person } }
  ]]))
  t.equal(reply.status, 200)
  t.match(emulator.store.list('leads')[0], { lastname: 'Tracked', _createdby_value: person })
  const delta = await fetch(deltaLink, { headers: { Authorization: TOKEN } })
  const changes = await delta.json() as { value: Array<Record<string, unknown>> }
  t.same(changes.value.map((row) => row.lastname), ['Tracked'])
})
