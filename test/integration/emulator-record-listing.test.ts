import t from 'tap'
import { startDataverseEmulator } from '../../sandbox/dataverse/index.ts'

/**
 * The Dataverse emulator's `/_emulator/records/<set>` control, as the sandbox guide's curl
 * commands use it: `$select` and `$top` keep the listing to a screen, the answer is indented,
 * and a bad request gets a 400 with a JSON body that says why.
 */

const emulator = await startDataverseEmulator({
  seed: {
    leads: [
      { firstname: 'Lena', lastname: 'Existing', emailaddress1: 'lena.existing@example.com', companyname: 'Northwind' },
      { firstname: 'Mia', lastname: 'Second', emailaddress1: 'mia.second@example.com', companyname: 'Contoso' }
    ]
  }
})
t.teardown(async () => { await emulator.close() })
const records = `${emulator.url}/_emulator/records`

t.test('$select keeps the chosen columns only, $top the first rows, one value per line', async (t) => {
  const response = await fetch(`${records}/leads?$select=lastname,emailaddress1&$top=1`)
  t.equal(response.status, 200)
  const text = await response.text()
  t.same(JSON.parse(text), [{ lastname: 'Existing', emailaddress1: 'lena.existing@example.com' }])
  t.ok(text.split('\n').length > 3, 'indented')
})

t.test('without options every row comes with every column', async (t) => {
  const rows = await (await fetch(`${records}/leads`)).json() as Array<Record<string, unknown>>
  t.equal(rows.length, 2)
  t.ok(rows.every((row) => typeof row.leadid === 'string' && 'companyname' in row && 'createdon' in row))
})

t.test('a $top that is not a count is refused with a 400 that says why', async (t) => {
  const response = await fetch(`${records}/leads?$top=many`)
  t.equal(response.status, 400)
  t.match(await response.json(), { error: { code: 'INVALID_RECORD_LISTING', message: /\$top/ } })
})

t.test('a row that is not a JSON object is refused with a 400, and nothing is stored', async (t) => {
  for (const body of ['{not json', '[1,2]', 'null']) {
    const response = await fetch(`${records}/leads`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
    t.equal(response.status, 400, body)
    t.match(await response.json(), { error: { code: 'INVALID_RECORD' } })
  }
  t.equal(emulator.store.list('leads').length, 2)
})
