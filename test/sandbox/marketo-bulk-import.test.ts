import t, { type Test } from 'tap'
import { startMarketoEmulator, type MarketoEmulator } from '../../sandbox/marketo/index.ts'
import { parseDelimitedRows } from '../../sandbox/marketo/delimited-file.ts'

/**
 * Bulk Lead Import in the Marketo emulator over real HTTP (shared/reference/marketo-rest-and-ssfs.md
 * "Bulk lead import", Adobe "Bulk Lead Import"): a multipart CSV becomes a job, the job runs
 * asynchronously and inserts or updates persons, its status and failures/warnings files can be
 * read, and the queue holds at most 10 jobs (1016). Plain fetch and FormData: node-marketo-rest
 * 0.7.8 has no bulk import method.
 */

const client = { clientId: 'bulk-client', clientSecret: 'bulk-secret' }

interface Envelope {
  success: boolean
  result?: Array<Record<string, unknown>>
  errors?: Array<{ code: string, message: string }>
}

async function startEmulator (t: Test): Promise<MarketoEmulator> {
  const emu = await startMarketoEmulator({ munchkinId: '123-ABC-456', clients: [client], seedPersons: [{ email: 'ann.lee@example.com', firstName: 'Ann' }] })
  t.teardown(() => emu.close())
  return emu
}

async function tokenFor (emu: MarketoEmulator): Promise<string> {
  const identity = await fetch(`${emu.identityUrl}/oauth/token?grant_type=client_credentials&client_id=${client.clientId}&client_secret=${client.clientSecret}`)
  return ((await identity.json()) as { access_token: string }).access_token
}

async function submitImport (emu: MarketoEmulator, token: string, csv: string, query = 'format=csv'): Promise<Envelope> {
  const form = new FormData()
  form.append('file', new Blob([csv], { type: 'text/csv' }), 'leads.csv')
  const response = await fetch(`${emu.url}/bulk/v1/leads.json?${query}`, { method: 'POST', headers: { Authorization: `Bearer ${token}` }, body: form })
  return await response.json() as Envelope
}

async function bulkGet (emu: MarketoEmulator, token: string, path: string): Promise<Response> {
  return await fetch(`${emu.url}/bulk/v1/leads/batch/${path}`, { headers: { Authorization: `Bearer ${token}` } })
}

t.test('a CSV import is queued, then inserts new persons and updates existing ones by email', async (t) => {
  const emu = await startEmulator(t)
  const token = await tokenFor(emu)

  const submitted = await submitImport(emu, token, 'email,firstName,title\nANN.LEE@example.com,,CFO\nbo.chen@example.com,Bo,"Head of Sales, EMEA"\n')
  t.match(submitted, { success: true, result: [{ batchId: Number, importId: String, status: 'Queued' }] })
  const batchId = submitted.result?.[0]?.batchId as number
  await emu.bulkImports.settled(batchId)

  const status = await (await bulkGet(emu, token, `${batchId}.json`)).json() as Envelope
  t.match(status.result, [{ batchId, status: 'Complete', numOfLeadsProcessed: 2, numOfRowsFailed: 0, numOfRowsWithWarning: 0 }])
  t.match(emu.persons.findByEmail('ann.lee@example.com'), { firstName: 'Ann', title: 'CFO' }, 'an existing person is updated; an empty cell leaves the field alone')
  t.match(emu.persons.findByEmail('bo.chen@example.com'), { firstName: 'Bo', title: 'Head of Sales, EMEA' }, 'a new person is created; a quoted value keeps its comma')
})

t.test('rows that cannot be imported go to the failures file, truncated values to the warnings file', async (t) => {
  const emu = await startEmulator(t)
  const token = await tokenFor(emu)
  emu.persons.create({ email: 'twin@example.com' })
  emu.persons.create({ email: 'twin@example.com' })

  const submitted = await submitImport(emu, token, `email,lastName\ncy.diaz@example.com,Diaz\n,NoEmail\ntwin@example.com,Twin\nlong@example.com,${'x'.repeat(300)}\n`)
  const batchId = submitted.result?.[0]?.batchId as number
  await emu.bulkImports.settled(batchId)

  const status = await (await bulkGet(emu, token, `${batchId}.json`)).json() as Envelope
  t.match(status.result, [{ status: 'Complete', numOfLeadsProcessed: 2, numOfRowsFailed: 2, numOfRowsWithWarning: 1 }])
  const failures = await bulkGet(emu, token, `${batchId}/failures.json`)
  t.match(failures.headers.get('content-type'), /^text\/csv/)
  t.same(parseDelimitedRows(await failures.text(), ','), [
    ['email', 'lastName', 'Import Failure Reason'],
    ['', 'NoEmail', 'email cannot be blank'],
    ['twin@example.com', 'Twin', 'Multiple leads match the lookup criteria']
  ])
  const warnings = parseDelimitedRows(await (await bulkGet(emu, token, `${batchId}/warnings.json`)).text(), ',')
  t.same(warnings.map((row) => row[0]), ['email', 'long@example.com'])
  t.equal(warnings[0]?.[2], 'Import Warning Reason')
  t.equal(String(emu.persons.findByEmail('long@example.com')?.lastName).length, 255)
})

t.test('two jobs run at once, ten wait in the queue, the eleventh is refused with 1016', async (t) => {
  const emu = await startEmulator(t)
  const token = await tokenFor(emu)
  emu.bulkImports.hold()

  const batchIds: number[] = []
  for (let index = 0; index < 10; index++) {
    const submitted = await submitImport(emu, token, `email\nperson${index}@example.com\n`)
    t.equal(submitted.success, true, `job ${index + 1} of 10 is accepted`)
    batchIds.push(submitted.result?.[0]?.batchId as number)
  }
  const statuses = await Promise.all(batchIds.map(async (id) => ((await (await bulkGet(emu, token, `${id}.json`)).json()) as Envelope).result?.[0]?.status))
  t.same(statuses, ['Importing', 'Importing', ...Array(8).fill('Queued')], 'FIFO: the first two run, the rest wait')
  const eleventh = await submitImport(emu, token, 'email\nlate@example.com\n')
  t.match(eleventh, { success: false, errors: [{ code: '1016', message: 'Too many imports' }] })

  emu.bulkImports.release()
  await Promise.all(batchIds.map(async (id) => await emu.bulkImports.settled(id)))
  t.equal(emu.persons.list().length, 11, 'every queued job ran')
  const again = await submitImport(emu, token, 'email\nlate@example.com\n')
  t.equal(again.success, true, 'the queue accepts jobs again once it drains')
})

t.test('refusals: a non-multipart body (612), a missing format (701), an unknown column fails the job, an unknown batch (1013), the access_token query parameter', async (t) => {
  const emu = await startEmulator(t)
  const token = await tokenFor(emu)

  const json = await fetch(`${emu.url}/bulk/v1/leads.json?format=csv`, { method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, body: '{}' })
  t.match(await json.json(), { success: false, errors: [{ code: '612' }] })
  t.match(await submitImport(emu, token, 'email\na@example.com\n', ''), { success: false, errors: [{ code: '701', message: 'format cannot be blank' }] })

  const unknownColumn = await submitImport(emu, token, 'email,shoeSize\na@example.com,44\n')
  await emu.bulkImports.settled(unknownColumn.result?.[0]?.batchId as number)
  t.match(((await (await bulkGet(emu, token, `${unknownColumn.result?.[0]?.batchId as number}.json`)).json()) as Envelope).result, [{ status: 'Failed', message: "Field 'shoeSize' not found" }])
  t.equal(emu.persons.findByEmail('a@example.com'), undefined, 'a failed job writes nothing')

  t.match(await (await bulkGet(emu, token, '999.json')).json(), { success: false, errors: [{ code: '1013' }] })
  const byQuery = await fetch(`${emu.url}/bulk/v1/leads/batch/1.json?access_token=${token}`)
  t.match(await byQuery.json(), { success: false, errors: [{ code: '600' }] }, 'bulk endpoints take the bearer header only')
})
