import t from 'tap'
import { startDataverseEmulator } from '../../sandbox/dataverse/index.ts'
import { selectedColumns, type TableChangesPage } from '../../src/dynamics/table-changes.ts'
import {
  WatermarkCursorError,
  decodeWatermarkCursor,
  encodeWatermarkCursor,
  initialWatermarkCursor,
  isWatermarkCursor,
  nextWatermarkCursor,
  readTableWatermark,
  rowsAfterFilter,
  trackingRecheckDue,
  type WatermarkCursor
} from '../../src/dynamics/table-watermark-read.ts'
import { dataverseTestClient } from '../helpers/dataverse-test-client.ts'

/**
 * Reading a table whose change tracking is off by its `modifiedon` (issue 12 §1, reference §2): the
 * cursor decisions as pure functions, then reads through our client against the emulated Dataverse
 * over real HTTP, with the leads table's tracking off.
 */

const A = 'aaaaaaaa-0000-4000-8000-000000000001'
const B = 'bbbbbbbb-0000-4000-8000-000000000002'
const C = 'cccccccc-0000-4000-8000-000000000003'
const at = (modifiedOn: string, id: string) => ({ modifiedOn, id })
const scan = (settled: WatermarkCursor['settled'] = null, readThrough: WatermarkCursor['readThrough'] = null): WatermarkCursor =>
  ({ select: ['leadid', 'lastname', 'modifiedon', '_modifiedby_value'], settled, readThrough })

t.test('the cursor: a change-tracking link and a watermark are told apart, and a watermark survives its round trip', async (t) => {
  const cursor = initialWatermarkCursor('lead', ['lastname'])
  t.ok(isWatermarkCursor(cursor))
  t.notOk(isWatermarkCursor('https://org.crm.dynamics.com/api/data/v9.2/leads?$select=leadid&$deltatoken=1%2101%2f01%2f2024'))
  const full = scan(at('2024-01-01T00:00:00Z', A), at('2024-01-01T00:00:05Z', B))
  t.same(decodeWatermarkCursor(encodeWatermarkCursor(full)), full)
  t.notMatch(cursor, /@|Ada/, 'column names, times and ids only')
})

t.test('the cursor: anything but a timestamp and a GUID is refused before it could reach a $filter', async (t) => {
  for (const text of [
    '{not json',
    '{"watermark":"versionnumber","select":[],"settled":null,"readThrough":null}',
    JSON.stringify({ watermark: 'modifiedon', select: ['leadid'], settled: at('2024-01-01T00:00:00Z or 1 eq 1', A), readThrough: null }),
    JSON.stringify({ watermark: 'modifiedon', select: ['leadid'], settled: null, readThrough: at('2024-01-01T00:00:00Z', `${A}) or (true`) }),
    JSON.stringify({ watermark: 'modifiedon', select: ['leadid,fullname'], settled: null, readThrough: null })
  ]) {
    t.throws(() => decodeWatermarkCursor(text), WatermarkCursorError, text)
  }
  t.match(new WatermarkCursorError(), { code: 'WATERMARK_CURSOR_INVALID' })
})

t.test('the keyset filter: rows after the last one seen, the same second included after its id', async (t) => {
  t.equal(rowsAfterFilter('leadid', null), undefined, 'a new scan reads every row')
  t.equal(rowsAfterFilter('leadid', at('2024-01-01T00:00:00Z', A)),
    `modifiedon gt 2024-01-01T00:00:00Z or (modifiedon eq 2024-01-01T00:00:00Z and leadid gt ${A})`)
})

t.test('the next cursor: settles past old rows, reads through the page while more are left, and starts again from the settled row when caught up', async (t) => {
  const old = '2024-01-01T00:00:00Z'
  const recent = '2024-01-01T00:10:00Z'
  const settledBefore = new Date('2024-01-01T00:05:00Z')

  t.same(nextWatermarkCursor(scan(), [at(old, A), at(old, B)], true, settledBefore),
    { cursor: scan(at(old, B), at(old, B)), caughtUp: false }, 'a full page of old rows: settled and read through its last')
  t.same(nextWatermarkCursor(scan(at(old, B), at(old, B)), [at(old, C), at(recent, A)], false, settledBefore),
    { cursor: scan(at(old, C), null), caughtUp: true }, 'a last page: settled up to the last old row, the recent one to be read again')
  t.same(nextWatermarkCursor(scan(at(old, C)), [at(recent, A)], false, settledBefore),
    { cursor: scan(at(old, C), null), caughtUp: true }, 'still recent: the scan stays where it was')
  t.same(nextWatermarkCursor(scan(at(old, C)), [at(recent, A)], false, new Date('2024-01-01T00:10:00Z')),
    { cursor: scan(at(recent, A), null), caughtUp: true }, 'stamped exactly at the limit: settled')
  t.same(nextWatermarkCursor(scan(at(old, C)), [], false, settledBefore),
    { cursor: scan(at(old, C), null), caughtUp: true }, 'nothing new: nothing moves')
  t.same(nextWatermarkCursor(scan(null, at(old, C)), [at(recent, A), at(old, B)], true, settledBefore).cursor.settled, null,
    'once a row is too recent, no later row settles (they come in modifiedon order)')
})

t.test('the cursor: when tracking was last found off travels with it, and a cursor from before the check still reads', async (t) => {
  const checked = { ...scan(at('2024-01-01T00:00:00Z', A)), trackingCheckedAt: '2024-01-01T01:00:00.000Z' }
  t.same(decodeWatermarkCursor(encodeWatermarkCursor(checked)), checked, 'round trip')
  t.equal(decodeWatermarkCursor(initialWatermarkCursor('lead', ['lastname'], new Date('2024-01-01T01:00:00Z'))).trackingCheckedAt, '2024-01-01T01:00:00.000Z')
  t.notOk('trackingCheckedAt' in decodeWatermarkCursor(initialWatermarkCursor('lead', ['lastname'])), 'never asked')
  const legacy = JSON.stringify({ watermark: 'modifiedon', select: ['leadid'], settled: null, readThrough: null })
  t.same(decodeWatermarkCursor(legacy), { select: ['leadid'], settled: null, readThrough: null }, 'a saved cursor of the previous release')
  for (const trackingCheckedAt of ['yesterday', 1_700_000_000_000, '2024-13-45T99:00:00.000Z', '2024-01-01T00:00:00.000Z) or (true']) {
    t.throws(() => decodeWatermarkCursor(JSON.stringify({ watermark: 'modifiedon', select: ['leadid'], settled: null, readThrough: null, trackingCheckedAt })), WatermarkCursorError, String(trackingCheckedAt))
  }
  t.equal(nextWatermarkCursor(checked, [at('2024-01-01T00:00:01Z', B)], true, new Date('2024-01-01T00:05:00Z')).cursor.trackingCheckedAt, checked.trackingCheckedAt, 'kept as the scan moves')
})

t.test('the tracking recheck: between scans only, once an hour, at once for a cursor never checked, and not held off by a clock that ran ahead', async (t) => {
  const hour = 60 * 60 * 1000
  const checkedAt = '2024-01-01T00:00:00.000Z'
  const between = { ...scan(at('2024-01-01T00:00:00Z', A)), trackingCheckedAt: checkedAt }
  const at59 = new Date('2024-01-01T00:59:59Z')
  const at60 = new Date('2024-01-01T01:00:00Z')
  t.notOk(trackingRecheckDue(between, at59, hour), 'within the hour: no request')
  t.ok(trackingRecheckDue(between, at60, hour), 'an hour later')
  t.notOk(trackingRecheckDue({ ...between, readThrough: at('2024-01-01T00:00:01Z', B) }, at60, hour), 'a scan with pages left finishes first')
  t.ok(trackingRecheckDue(scan(), at59, hour), 'never checked (a cursor from before the check)')
  t.notOk(trackingRecheckDue(between, new Date('2023-12-31T23:30:00Z'), hour), 'a check a little in the future (another worker\'s clock): trusted')
  t.ok(trackingRecheckDue(between, new Date('2023-12-31T22:59:59Z'), hour), 'more than an interval in the future: not trusted')
})

async function untrackedLeads (t: { teardown: (fn: () => unknown) => void }) {
  const emulator = await startDataverseEmulator({ changeTracking: { disabledFor: ['leads'] } })
  t.teardown(() => emulator.close())
  return { emulator, client: dataverseTestClient(emulator.url) }
}

type Page = Extract<TableChangesPage, { kind: 'page' }>
function asPage (result: TableChangesPage): Page {
  if (result.kind !== 'page') throw new Error(`expected a page, got ${JSON.stringify(result)}`)
  return result
}

t.test('many rows with one modifiedon across page boundaries are each read exactly once, in a few pages', async (t) => {
  const { emulator, client } = await untrackedLeads(t)
  const second = '2024-03-01T12:00:00Z'
  const names = ['A', 'B', 'C', 'D', 'E', 'F', 'G']
  for (const lastname of names) emulator.store.insert('leads', { lastname, modifiedon: second })
  emulator.store.insert('leads', { lastname: 'Earlier', modifiedon: '2024-02-01T00:00:00Z' })
  emulator.store.insert('leads', { lastname: 'Later', modifiedon: '2024-04-01T00:00:00Z' })

  const read: string[] = []
  let cursor = initialWatermarkCursor('lead', ['lastname'])
  let pages = 0
  for (;;) {
    const page = asPage(await readTableWatermark(client, { table: 'lead', columns: ['lastname'], cursor, pageSize: 2 }))
    pages++
    t.same(page.deletedIds, [])
    read.push(...page.upserted.map((row) => String(row.columns.lastname)))
    cursor = page.cursor
    if (page.caughtUp) break
    if (pages > 10) throw new Error('the read does not end')
  }
  t.equal(read.length, 9, 'every row once')
  t.same([...read].sort(), ['A', 'B', 'C', 'D', 'E', 'Earlier', 'F', 'G', 'Later'])
  t.equal(read[0], 'Earlier', 'oldest change first')
  t.equal(read[8], 'Later', 'newest change last')
  t.equal(pages, 5, 'two rows a page, the last page short')

  const quiet = asPage(await readTableWatermark(client, { table: 'lead', columns: ['lastname'], cursor, pageSize: 2 }))
  t.same(quiet.upserted, [], 'caught up on settled rows: nothing is read again')
  t.equal(quiet.cursor, cursor)
})

t.test('a recent row is read again while it is younger than the overlap, then never again; an edit moves it to the end', async (t) => {
  const { emulator, client } = await untrackedLeads(t)
  const id = emulator.store.insert('leads', { lastname: 'Fresh', jobtitle: 'Engineer' })
  const read = async (cursor: string, overlapMs: number) => asPage(await readTableWatermark(client, { table: 'lead', columns: ['lastname', 'jobtitle'], cursor, overlapMs }))

  const first = await read(initialWatermarkCursor('lead', ['lastname', 'jobtitle']), 60_000)
  t.same(first.upserted.map((row) => row.id), [id])
  t.ok(first.caughtUp)
  t.match(first.upserted[0], { modifiedBy: emulator.store.defaultUserId, columns: { lastname: 'Fresh', jobtitle: 'Engineer' } })
  const again = await read(first.cursor, 60_000)
  t.same(again.upserted.map((row) => row.id), [id], 'still inside the overlap: read again (a late-committing neighbour would be caught)')

  // Settled once it is a second older than Dataverse's clock (the least overlap, 1 s: stamps have
  // whole seconds); read on until then, with a deadline.
  const deadline = Date.now() + 5_000
  let settled = await read(again.cursor, 0)
  t.same(settled.upserted.map((row) => row.id), [id])
  while (decodeWatermarkCursor(settled.cursor).settled === null) {
    if (Date.now() > deadline) throw new Error('the row never settled')
    settled = await read(settled.cursor, 0)
  }
  t.equal(decodeWatermarkCursor(settled.cursor).settled?.id, id, 'settled once older than the overlap')
  t.same((await read(settled.cursor, 0)).upserted, [], 'never read again')

  emulator.store.update('leads', id, { jobtitle: 'Chief Engineer' })
  const edited = await read(settled.cursor, 0)
  t.same(edited.upserted.map((row) => row.columns.jobtitle), ['Chief Engineer'], 'the edit stamps a later modifiedon and is read')
})

t.test('a cursor made for other columns asks for a restart, so a newly mapped field arrives; Dataverse\'s labels come with the rows', async (t) => {
  const { emulator, client } = await untrackedLeads(t)
  emulator.store.insert('leads', { lastname: 'Labelled', leadsourcecode: 8, modifiedon: '2024-01-01T00:00:00Z' })
  const cursor = initialWatermarkCursor('lead', ['lastname'])
  t.same(await readTableWatermark(client, { table: 'lead', columns: ['lastname', 'jobtitle'], cursor }), { kind: 'restart', reason: 'columns-changed' })
  t.same(decodeWatermarkCursor(cursor).select, selectedColumns('lead', ['lastname']))
  const page = asPage(await readTableWatermark(client, { table: 'lead', columns: ['lastname', 'leadsourcecode'], cursor: initialWatermarkCursor('lead', ['lastname', 'leadsourcecode']) }))
  t.match(page.upserted[0], { columns: { leadsourcecode: 8 }, labels: { leadsourcecode: 'Web' } }, 'the option set\'s label, as a tracked read has it')
})
