import t from 'tap'
import { sendToWebApi, startedDataverseEmulator } from '../helpers/dataverse-emulator.ts'

/**
 * The record store tells a listener about every update applied, whatever door it came through (a
 * PATCH, each target of an UpdateMultiple, a test's own `update`), with the row's id and the changes:
 * fault tests count the service's writes per record with it, so "written once" can be asserted.
 */

t.test('every applied update is reported once per row, with its id and changes; refused ones are not', async (t) => {
  const dataverse = await startedDataverseEmulator(t)
  const api = `${dataverse.url}/api/data/v9.2`
  const ada = dataverse.store.insert('leads', { lastname: 'Lovelace', emailaddress1: 'ada@example.com' })
  const grace = dataverse.store.insert('leads', { lastname: 'Hopper', emailaddress1: 'grace@example.com' })
  const seen: Array<{ entitySet: string, id: string, jobtitle: unknown }> = []
  const unsubscribe = dataverse.store.onUpdate((entitySet, id, changes) => { seen.push({ entitySet, id, jobtitle: changes.jobtitle }) })

  t.equal((await sendToWebApi(`${api}/leads(${ada})`, 'PATCH', { body: { jobtitle: 'Engineer' }, headers: { 'If-Match': '*' } })).status, 204)
  t.equal((await sendToWebApi(`${api}/leads/Microsoft.Dynamics.CRM.UpdateMultiple`, 'POST', {
    body: { Targets: [{ '@odata.type': 'Microsoft.Dynamics.CRM.lead', leadid: ada, jobtitle: 'Chief Engineer' }, { '@odata.type': 'Microsoft.Dynamics.CRM.lead', leadid: grace, jobtitle: 'Admiral' }] }
  })).status, 204)
  // A bulk message with one missing row is refused whole: nothing applied, nothing reported.
  t.equal((await sendToWebApi(`${api}/leads/Microsoft.Dynamics.CRM.UpdateMultiple`, 'POST', {
    body: { Targets: [{ '@odata.type': 'Microsoft.Dynamics.CRM.lead', leadid: ada, jobtitle: 'Refused' }, { '@odata.type': 'Microsoft.Dynamics.CRM.lead', leadid: '00000000-0000-0000-0000-000000000001', jobtitle: 'Nobody' }] }
  })).status, 404)
  dataverse.store.update('leads', grace, { jobtitle: 'Rear Admiral' })

  t.same(seen, [
    { entitySet: 'leads', id: ada, jobtitle: 'Engineer' },
    { entitySet: 'leads', id: ada, jobtitle: 'Chief Engineer' },
    { entitySet: 'leads', id: grace, jobtitle: 'Admiral' },
    { entitySet: 'leads', id: grace, jobtitle: 'Rear Admiral' }
  ])
  unsubscribe()
  dataverse.store.update('leads', ada, { jobtitle: 'After' })
  t.equal(seen.length, 4, 'an unsubscribed listener hears nothing more')
})
