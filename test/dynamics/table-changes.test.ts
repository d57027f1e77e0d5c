import t from 'tap'
import { startDataverseEmulator, type DataverseEmulator } from '../../sandbox/dataverse/index.ts'
import type { DataverseClient } from '../../src/dynamics/dataverse-client.ts'
import { DataverseError } from '../../src/dynamics/dataverse-errors.ts'
import { changeReadColumns, changeTrackingIsOn, cursorSelectsColumns, mappedColumns, readTableChanges, selectedColumns, trackingOffAnswer, type TableChangesPage } from '../../src/dynamics/table-changes.ts'
import { parseFieldMapping } from '../../src/sync/field-mapping.ts'
import { dataverseTestClient } from '../helpers/dataverse-test-client.ts'

/**
 * Reading a table's changes page by page with Dataverse change tracking (reference §2), through our
 * client, against the emulated Dataverse over real HTTP.
 */

async function started (t: { teardown: (fn: () => unknown) => void }, options: Parameters<typeof startDataverseEmulator>[0] = {}): Promise<{ emulator: DataverseEmulator, client: DataverseClient }> {
  const emulator = await startDataverseEmulator(options)
  t.teardown(() => emulator.close())
  const client = dataverseTestClient(emulator.url)
  return { emulator, client }
}

type Page = Extract<TableChangesPage, { kind: 'page' }>

function asPage (result: TableChangesPage): Page {
  if (result.kind !== 'page') throw new Error(`expected a page, got ${JSON.stringify(result)}`)
  return result
}

/** Follows the cursor from `cursor` until a page is caught up; answers every page. */
async function readToEnd (client: DataverseClient, cursor: string | undefined, columns: string[]): Promise<Page[]> {
  const pages: Page[] = []
  for (;;) {
    const page = asPage(await readTableChanges(client, { table: 'lead', columns, cursor, pageSize: 2 }))
    pages.push(page)
    if (page.caughtUp) return pages
    cursor = page.cursor
    if (pages.length > 20) throw new Error('the read does not end')
  }
}

t.test('a first full read over several pages, then a delta read sees exactly the create, the update and the delete', async (t) => {
  const { emulator, client } = await started(t)
  const ids = Array.from({ length: 5 }, (_, index) => emulator.store.insert('leads', { firstname: `First ${index}`, lastname: `Last ${index}`, jobtitle: 'Unmapped here' }))

  const full = await readToEnd(client, undefined, ['firstname', 'lastname'])
  t.same(full.map((page) => page.upserted.length), [2, 2, 1], 'five rows in pages of two')
  t.same(full.map((page) => page.caughtUp), [false, false, true], 'only the last page is caught up')
  t.same(new Set(full.flatMap((page) => page.upserted.map((row) => row.id))), new Set(ids), 'every row once')
  t.same(full.flatMap((page) => page.deletedIds), [], 'a full read reports no deletes')
  const first = full[0]!.upserted[0]!
  t.same(Object.keys(first.columns).sort(), ['firstname', 'lastname'], 'only the selected columns: not jobtitle, not the etag')
  t.match(first, { modifiedOn: /^\d{4}-\d\d-\d\dT/, modifiedBy: /^[0-9a-f-]{36}$/ }, 'with who changed it and when')
  const deltaLink = full.at(-1)!.cursor
  t.match(deltaLink, /\$deltatoken=/, 'the last cursor is the delta link')

  const quiet = asPage(await readTableChanges(client, { table: 'lead', columns: ['firstname', 'lastname'], cursor: deltaLink }))
  t.same([quiet.upserted, quiet.deletedIds, quiet.caughtUp], [[], [], true], 'nothing changed: nothing read')

  emulator.store.update('leads', ids[1]!, { firstname: 'Edited' })
  const created = emulator.store.insert('leads', { firstname: 'New', lastname: 'Lead' })
  emulator.store.delete('leads', ids[3]!)
  const delta = await readToEnd(client, deltaLink, ['firstname', 'lastname'])
  t.same(delta.flatMap((page) => page.upserted.map((row) => [row.id, row.columns.firstname])), [[ids[1], 'Edited'], [created, 'New']], 'the update and the create')
  t.same(delta.flatMap((page) => page.deletedIds), [ids[3]], 'the delete')
  t.same(asPage(await readTableChanges(client, { table: 'lead', columns: ['firstname', 'lastname'], cursor: delta.at(-1)!.cursor })).upserted, [], 'the new delta link starts after them')
})

t.test('an expired delta token asks for a restart; the full read then answers every row again', async (t) => {
  const { emulator, client } = await started(t)
  emulator.store.insert('contacts', { lastname: 'Kept' })
  const initial = asPage(await readTableChanges(client, { table: 'contact', columns: ['lastname'], cursor: undefined }))
  emulator.changeTracking.expireTokens()
  t.same(await readTableChanges(client, { table: 'contact', columns: ['lastname'], cursor: initial.cursor }), { kind: 'restart', reason: 'delta-token-expired' })
  const again = asPage(await readTableChanges(client, { table: 'contact', columns: ['lastname'], cursor: undefined }))
  t.same(again.upserted.map((row) => row.columns.lastname), ['Kept'])
})

t.test('a cursor made for other columns asks for a restart, so a newly mapped field arrives', async (t) => {
  const { client } = await started(t)
  const initial = asPage(await readTableChanges(client, { table: 'lead', columns: ['lastname'], cursor: undefined }))
  t.same(await readTableChanges(client, { table: 'lead', columns: ['lastname', 'jobtitle'], cursor: initial.cursor }), { kind: 'restart', reason: 'columns-changed' })
  t.ok(cursorSelectsColumns(initial.cursor, selectedColumns('lead', ['lastname'])), 'the same columns in any order follow the cursor')
  t.notOk(cursorSelectsColumns('https://org.example/api/data/v9.2/leads?$deltatoken=1', ['leadid']), 'a cursor without $select is not trusted')
})

t.test('a table whose change tracking is off is said so, for a watermark read to take over', async (t) => {
  const { emulator, client } = await started(t, { changeTracking: { disabledFor: ['leads'] } })
  emulator.store.insert('leads', { lastname: 'Untracked' })
  t.same(await readTableChanges(client, { table: 'lead', columns: ['lastname'], cursor: undefined }), { kind: 'change-tracking-off' })
})

t.test('tracking off is known from the full read\'s first page: no page of rows is handed on, the table is not read to its end first', async (t) => {
  const { emulator, client } = await started(t, { changeTracking: { disabledFor: ['leads'] } })
  for (let index = 0; index < 7; index++) emulator.store.insert('leads', { lastname: `Untracked ${index}` })
  const before = emulator.requestCount({ method: 'GET', entitySet: 'leads' })
  t.same(await readTableChanges(client, { table: 'lead', columns: ['lastname'], cursor: undefined, pageSize: 2 }), { kind: 'change-tracking-off' })
  t.equal(emulator.requestCount({ method: 'GET', entitySet: 'leads' }) - before, 1, 'one request, though Dataverse had pages left')
})

t.test('the tracking-off decision: only a full read\'s first page without Preference-Applied and without a delta link', async (t) => {
  const deltaLink = 'https://org.example/api/data/v9.2/leads?$select=leadid&$deltatoken=1'
  t.ok(trackingOffAnswer({ fullReadStart: true, trackChangesApplied: false, deltaLink: undefined }), 'the preference ignored (reference §1.2, §2)')
  t.notOk(trackingOffAnswer({ fullReadStart: true, trackChangesApplied: true, deltaLink: undefined }), 'honoured, with pages to come')
  t.notOk(trackingOffAnswer({ fullReadStart: true, trackChangesApplied: false, deltaLink }), 'a delta link comes only from a tracked read, whatever the header')
  t.notOk(trackingOffAnswer({ fullReadStart: false, trackChangesApplied: false, deltaLink: undefined }), 'a later page is not judged by the header')
})

t.test('asking whether change tracking is on costs one request of one row, and answers the table\'s state as it changes', async (t) => {
  const { emulator, client } = await started(t, { changeTracking: { disabledFor: ['contacts'] } })
  for (let index = 0; index < 3; index++) emulator.store.insert('contacts', { lastname: `Probe ${index}` })
  const before = emulator.requestCount({ method: 'GET', entitySet: 'contacts' })
  t.equal(await changeTrackingIsOn(client, 'contact'), false, 'off')
  emulator.changeTracking.setTracked('contacts', true)
  t.equal(await changeTrackingIsOn(client, 'contact'), true, 'turned on: though the one-row page has more after it, so no delta link')
  t.equal(emulator.requestCount({ method: 'GET', entitySet: 'contacts' }) - before, 2, 'one request each')
  t.equal(await changeTrackingIsOn(client, 'lead'), true, 'an empty tracked table too')
})

t.test('a cursor off the environment\'s Web API is never followed: the bearer token stays home', async (t) => {
  const { emulator, client } = await started(t)
  const before = emulator.requestCount({ method: 'GET' })
  for (const cursor of ['https://elsewhere.example/api/data/v9.2/leads?$select=leadid,lastname,modifiedon,_modifiedby_value', '//elsewhere.example/api/data/v9.2/leads?$select=leadid,lastname,modifiedon,_modifiedby_value']) {
    const error = await readTableChanges(client, { table: 'lead', columns: ['lastname'], cursor }).catch((e: unknown) => e)
    t.type(error, DataverseError)
    t.match(error, { code: 'FOREIGN_NEXT_LINK' }, cursor)
  }
  t.equal(emulator.requestCount({ method: 'GET' }), before, 'no request sent')
})

t.test('the mapped columns of a table come from the field mapping, each once, a null column left out', async (t) => {
  const mapping = parseFieldMapping(JSON.stringify({
    deletedFlag: { marketoField: 'microsoftIsDeleted' },
    fields: [
      { marketoField: 'firstName', dataType: 'string', lead: 'firstname', contact: 'firstname', direction: 'both' },
      { marketoField: 'company', dataType: 'string', lead: 'companyname', contact: null, direction: 'both' },
      { marketoField: 'createdAt', dataType: 'datetime', lead: 'createdon', contact: 'createdon', direction: 'toMarketo' }
    ]
  }), 'inline')
  t.same(mappedColumns(mapping, 'lead'), ['firstname', 'companyname', 'createdon'])
  t.same(mappedColumns(mapping, 'contact'), ['firstname', 'createdon'])
  t.same(selectedColumns('contact', ['firstname', 'modifiedon']), ['contactid', 'firstname', 'modifiedon', '_modifiedby_value'])
})

t.test('a change read selects the sync filter only on a table that has it, and on contacts the lead each was qualified from', async (t) => {
  const mapping = parseFieldMapping(JSON.stringify({
    deletedFlag: { marketoField: 'microsoftIsDeleted' },
    fields: [{ marketoField: 'firstName', dataType: 'string', lead: 'firstname', contact: 'firstname', direction: 'both' }]
  }), 'inline')
  t.same(changeReadColumns(mapping, 'lead', { syncFilter: true }), ['firstname', 'new_synctomkto'])
  t.same(changeReadColumns(mapping, 'lead', { syncFilter: false }), ['firstname'], 'a table without the column: selecting it would be refused')
  t.same(changeReadColumns(mapping, 'contact', { syncFilter: true }), ['firstname', 'new_synctomkto', '_originatingleadid_value'])
  t.same(changeReadColumns(mapping, 'contact', { syncFilter: false }), ['firstname', '_originatingleadid_value'])
})

t.test('the filter and the originating lead travel in a changed row\'s columns', async (t) => {
  const { emulator, client } = await started(t)
  const leadId = emulator.store.insert('leads', { lastname: 'Origin', new_synctomkto: false })
  emulator.store.insert('contacts', { lastname: 'Origin', _originatingleadid_value: leadId })
  const mapping = parseFieldMapping(JSON.stringify({
    deletedFlag: { marketoField: 'microsoftIsDeleted' },
    fields: [{ marketoField: 'lastName', dataType: 'string', lead: 'lastname', contact: 'lastname', direction: 'both' }]
  }), 'inline')
  const lead = asPage(await readTableChanges(client, { table: 'lead', columns: changeReadColumns(mapping, 'lead', { syncFilter: true }), cursor: undefined }))
  t.match(lead.upserted[0]?.columns, { lastname: 'Origin', new_synctomkto: false })
  const contact = asPage(await readTableChanges(client, { table: 'contact', columns: changeReadColumns(mapping, 'contact', { syncFilter: true }), cursor: undefined }))
  t.match(contact.upserted[0]?.columns, { lastname: 'Origin', new_synctomkto: null, _originatingleadid_value: leadId })
})
