import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import pino from 'pino'
import { startDataverseEmulator } from '../../sandbox/dataverse/index.ts'
import { startMarketoEmulator } from '../../sandbox/marketo/index.ts'
import { checkFieldMappingAtStartup } from '../../src/background-sync/check-field-mapping.ts'
import { DataverseClient } from '../../src/dynamics/dataverse-client.ts'
import { MarketoRestClient } from '../../src/marketo/marketo-rest-client.ts'
import { FieldMappingError, type FieldMapping } from '../../src/sync/field-mapping.ts'
import { FieldMappingMismatchError } from '../../src/sync/field-mapping-check.ts'

/**
 * The field mapping checked at start-up against both emulators over real HTTP: Marketo's Describe2
 * and Dataverse's attribute metadata of lead and contact, as a worker starting on the sandbox would.
 */

const DEFAULT_MAPPING_FILE = fileURLToPath(new URL('../../src/sync/field-mapping.default.json', import.meta.url))

const marketoEmulator = await startMarketoEmulator({ munchkinId: '123-ABC-456', clients: [{ clientId: 'cid', clientSecret: 'secret' }] })
t.teardown(async () => { await marketoEmulator.close() })
const dataverseEmulator = await startDataverseEmulator()
t.teardown(async () => { await dataverseEmulator.close() })
const directory = await mkdtemp(join(tmpdir(), 'field-mapping-'))
t.teardown(async () => { await rm(directory, { recursive: true, force: true }) })

/** The check's dependencies, with the JSON log lines it wrote. */
function startupDependencies (mappingFile: string) {
  const logLines: Array<Record<string, unknown>> = []
  const sink = new Writable({
    write (chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') logLines.push(JSON.parse(line) as Record<string, unknown>)
      done()
    }
  })
  return {
    logLines,
    options: {
      marketo: new MarketoRestClient({ baseUrl: marketoEmulator.url, clientId: 'cid', clientSecret: 'secret' }),
      dataverse: new DataverseClient({
        url: dataverseEmulator.url,
        tokens: { getAccessToken: async () => 'any-bearer-the-emulator-accepts' },
        logger: pino({ level: 'silent' }),
        maxConcurrentRequests: 4,
        requestTimeoutMs: 10_000
      }),
      mappingFile,
      logger: pino({ level: 'info' }, sink)
    }
  }
}

/** A copy of the default mapping, edited, written where SYNC_FIELD_MAPPING_FILE could point. */
async function editedMapping (name: string, edit: (mapping: FieldMapping) => void): Promise<string> {
  const mapping = JSON.parse(await readFile(DEFAULT_MAPPING_FILE, 'utf8')) as FieldMapping
  edit(mapping)
  const file = join(directory, name)
  await writeFile(file, JSON.stringify(mapping, null, 2))
  return file
}

function entry (mapping: FieldMapping, marketoField: string): FieldMapping['fields'][number] {
  const found = mapping.fields.find((field) => field.marketoField === marketoField)
  if (found === undefined) throw new Error(`the default mapping has no ${marketoField}`)
  return found
}

t.test('the default mapping passes against the sandbox, and Marketo fields longer than their Dynamics column are logged as warnings', async (t) => {
  const { options, logLines } = startupDependencies(DEFAULT_MAPPING_FILE)
  const { mapping, warnings } = await checkFieldMappingAtStartup(options)
  t.equal(mapping.deletedFlag.marketoField, 'microsoftIsDeleted')
  t.ok(mapping.fields.some((field) => field.marketoField === 'msiLastInterestingMomentDate'), 'the whole default mapping was read')
  // Marketo's string fields hold 255 characters, Dataverse's lead.firstname 50 (reference §7).
  t.match(warnings.find((warning) => warning.table === 'lead' && warning.column === 'firstname'), { kind: 'longer-in-marketo', marketoField: 'firstName' })
  t.ok(warnings.every((warning) => warning.kind === 'longer-in-marketo'))
  const warned = logLines.filter((line) => line.level === 40)
  t.equal(warned.length, warnings.length, 'one warning line per warning')
  t.match(warned.find((line) => line.column === 'firstname' && line.table === 'lead'), { marketoField: 'firstName', msg: /255 characters.*50/ })
  t.match(logLines.at(-1), { level: 30, fields: mapping.fields.length, msg: 'field mapping matches Marketo and Dataverse' })
})

t.test('a mapping naming fields neither side has stops start-up naming each of them', async (t) => {
  const file = await editedMapping('missing-fields.json', (mapping) => {
    entry(mapping, 'title').marketoField = 'jobTitleTypo'
    entry(mapping, 'city').contact = 'address1_town'
  })
  const error = await checkFieldMappingAtStartup(startupDependencies(file).options).catch((caught: unknown) => caught)
  t.type(error, FieldMappingMismatchError)
  const mismatch = error as FieldMappingMismatchError
  t.equal(mismatch.code, 'FIELD_MAPPING_MISMATCH')
  t.same(mismatch.problems.map((problem) => [problem.kind, problem.marketoField, problem.table, problem.column]), [
    ['missing-in-marketo', 'jobTitleTypo', undefined, undefined],
    ['missing-in-dataverse', 'city', 'contact', 'address1_town']
  ])
  t.match(mismatch.message, /Marketo has no person field "jobTitleTypo"/)
  t.match(mismatch.message, /Dataverse contact has no column "address1_town"/)
})

t.test('read-only targets as each side\'s metadata says: a Sales Insight score written to Marketo, createdon written to Dynamics', async (t) => {
  const file = await editedMapping('read-only.json', (mapping) => {
    entry(mapping, 'relativeScoring').direction = 'both'
    entry(mapping, 'microsoftCreatedDate').direction = 'both'
  })
  const error = await checkFieldMappingAtStartup(startupDependencies(file).options).catch((caught: unknown) => caught)
  t.type(error, FieldMappingMismatchError)
  t.same((error as FieldMappingMismatchError).problems.map((problem) => [problem.kind, problem.marketoField, problem.table ?? 'marketo']), [
    ['read-only-target', 'microsoftCreatedDate', 'lead'],
    ['read-only-target', 'microsoftCreatedDate', 'contact'],
    ['read-only-target', 'relativeScoring', 'marketo']
  ])
})

t.test('an option-set column mapped from a Marketo number is a type mismatch: Dataverse\'s metadata says Picklist, not Integer', async (t) => {
  const file = await editedMapping('picklist.json', (mapping) => {
    entry(mapping, 'leadScore').lead = 'leadqualitycode'
    // One column takes one Marketo field (field-mapping.ts), so Person Rating leaves the mapping.
    mapping.fields = mapping.fields.filter((field) => field.marketoField !== 'rating')
  })
  const error = await checkFieldMappingAtStartup(startupDependencies(file).options).catch((caught: unknown) => caught)
  t.match((error as FieldMappingMismatchError).problems, [{ kind: 'type-mismatch', marketoField: 'leadScore', table: 'lead', column: 'leadqualitycode', message: /\(Picklist\)/ }])
})

t.test('an unreadable or invalid mapping file stops start-up before any Marketo or Dataverse call', async (t) => {
  const marketoCalls = marketoEmulator.restCallCount()
  const dataverseCalls = dataverseEmulator.requestCount()
  const missing = await checkFieldMappingAtStartup(startupDependencies(join(directory, 'absent.json')).options).catch((caught: unknown) => caught)
  t.type(missing, FieldMappingError)
  t.match(missing, { code: 'FIELD_MAPPING_INVALID', message: /absent\.json is invalid:\n {2}- cannot be read/ })
  const file = join(directory, 'not-json.json')
  await writeFile(file, '{ "fields": [')
  t.match(await checkFieldMappingAtStartup(startupDependencies(file).options).catch((caught: unknown) => caught), { code: 'FIELD_MAPPING_INVALID', message: /not JSON/ })
  t.equal(marketoEmulator.restCallCount(), marketoCalls)
  t.equal(dataverseEmulator.requestCount(), dataverseCalls)
})
