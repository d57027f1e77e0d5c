import t from 'tap'
import { eventually } from '../helpers/flow-step-harness.ts'
import { startBackgroundSyncHarness } from '../helpers/background-sync-harness.ts'
import { SANDBOX_USERS } from '../../sandbox/start-sandbox.ts'

/**
 * Option-set columns reach Marketo as their option's label (issue 12; field-mapping-check.ts): the
 * running worker (BACKGROUND_SYNC=on) reads lead changes with the FormattedValue annotations from the
 * emulated Dataverse, and the person shows "Web", not 8.
 */

const harness = await startBackgroundSyncHarness(t)
const { sandbox, config } = harness
const dana = SANDBOX_USERS.dana.systemuserid
harness.startWorker()

const personByEmail = (email: string) => sandbox.marketo.persons.findByEmail(email)

t.test('a lead\'s lead source set in Dynamics shows as its label on the person', async (t) => {
  const leadId = sandbox.dataverse.store.insert('leads', {
    lastname: 'Hopper', emailaddress1: 'grace.hopper@example.com', leadsourcecode: 8, leadqualitycode: 1, _modifiedby_value: dana
  })
  const person = await eventually(() => personByEmail('grace.hopper@example.com'), { timeoutMs: 5_000, what: 'the person in Marketo' })
  t.match(person, { leadSource: 'Web', rating: 'Hot', leadStatus: 'Open' }, 'labels, not option values')

  sandbox.dataverse.store.update('leads', leadId, { leadsourcecode: 7, _modifiedby_value: dana })
  await eventually(() => personByEmail('grace.hopper@example.com')?.leadSource === 'Trade Show' ? true : undefined, { timeoutMs: 5_000, what: 'the new lead source label' })
  t.equal(personByEmail('grace.hopper@example.com')?.rating, 'Hot', 'the unchanged rating keeps its label')
})
