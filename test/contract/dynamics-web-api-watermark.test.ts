import t from 'tap'
import { DynamicsWebApi } from 'dynamics-web-api'
import { startDataverseEmulator } from '../../sandbox/dataverse/index.ts'

/**
 * Unmodified dynamics-web-api 2.5 against a Dataverse emulator table whose change tracking is off
 * (reference doc §2): `trackChanges` gets rows and no delta link, and the `modifiedon` keyset read
 * the sync falls back to (`$filter` with unquoted datetimes and GUIDs, `$orderby` on two columns,
 * `odata.maxpagesize`, §1.10) answers each row once across pages of one timestamp.
 */

// dynamics-web-api honours http_proxy; a proxy would never reach loopback (reference doc §9.1).
for (const name of ['http_proxy', 'https_proxy', 'HTTP_PROXY', 'HTTPS_PROXY']) delete process.env[name]

const dataverse = await startDataverseEmulator({ changeTracking: { disabledFor: ['leads'] } })
t.teardown(() => dataverse.close())
const api = new DynamicsWebApi({ serverUrl: dataverse.url, onTokenRefresh: async () => 'any-bearer-the-emulator-accepts' })

t.test('a table with change tracking off answers a tracked read with its rows and no delta link; turned on, with one', async (t) => {
  dataverse.store.insert('leads', { lastname: 'Untracked' })
  const untracked = await api.retrieveAll({ collection: 'leads', select: ['lastname'], trackChanges: true })
  t.same(untracked.value.map((row) => row.lastname), ['Untracked'])
  t.equal(untracked.oDataDeltaLink, undefined)
  dataverse.changeTracking.setTracked('leads', true)
  t.teardown(() => { dataverse.changeTracking.setTracked('leads', false) })
  const tracked = await api.retrieveAll({ collection: 'leads', select: ['lastname'], trackChanges: true })
  t.match(tracked.oDataDeltaLink, /\$deltatoken=/)
})

t.test('a keyset read by modifiedon and leadid pages through many rows of one second, each once', async (t) => {
  dataverse.store.clear()
  const second = '2024-06-01T09:30:00Z'
  for (const lastname of ['A', 'B', 'C', 'D', 'E']) dataverse.store.insert('leads', { lastname, modifiedon: second })
  const seen: string[] = []
  let after: { modifiedon: Date, leadid: string } | undefined
  for (let page = 0; page < 10; page++) {
    const stamp = after?.modifiedon.toISOString().replace('.000Z', 'Z')
    const response = await api.retrieveMultiple<{ lastname: string, leadid: string, modifiedon: Date }>({
      collection: 'leads',
      select: ['lastname', 'modifiedon'],
      ...(after === undefined ? {} : { filter: `modifiedon gt ${stamp} or (modifiedon eq ${stamp} and leadid gt ${after.leadid})` }),
      orderBy: ['modifiedon asc', 'leadid asc'],
      maxPageSize: 2
    })
    seen.push(...response.value.map((row) => row.lastname))
    const last = response.value[response.value.length - 1]
    if (response.oDataNextLink === undefined || last === undefined) break
    after = last
  }
  t.same([...seen].sort(), ['A', 'B', 'C', 'D', 'E'], 'each row once')
  t.equal(seen.length, 5)
})
