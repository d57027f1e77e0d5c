import t from 'tap'
import { eventually } from '../helpers/flow-step-harness.ts'
import { startBackgroundSyncHarness, editPersonInMarketo } from '../helpers/background-sync-harness.ts'
import { sendToWebApi } from '../helpers/dataverse-emulator.ts'
import { SANDBOX_USERS } from '../../sandbox/start-sandbox.ts'
import { CheckpointStore } from '../../src/background-sync/checkpoints.ts'
import { ParkedChangeStore } from '../../src/background-sync/parked-changes.ts'
import { recordLinkKey } from '../../src/queue/redis-keys.ts'
import { createMsalAccessTokenProvider } from '../../src/dynamics/access-token-provider.ts'

/**
 * A lead qualified into a contact in Dynamics (issue 12 §7; marketo-native-dynamics-sync.md §5
 * "Qualify", §6): the worker `npm run worker` builds, BACKGROUND_SYNC=on with both directions a few
 * hundred milliseconds apart, real Redis and BullMQ, the emulated Dataverse (its QualifyLead action)
 * and Marketo. Dana works in Dynamics; a marketer edits through the Marketo emulator's control API.
 */

const harness = await startBackgroundSyncHarness(t, { SYNC_MARKETO_POLL_INTERVAL_MS: '200' })
const { sandbox, config, redis } = harness
const prefix = config.redis.keyPrefix
const dana = SANDBOX_USERS.dana.systemuserid
const checkpoints = new CheckpointStore(redis, prefix)
const contactCheckpoint = { direction: 'dynamics-to-marketo', table: 'contact' } as const

harness.startWorker()

const personsWith = (email: string) => sandbox.marketo.persons.list().filter((person) => person.email === email)

async function linkOf (table: 'lead' | 'contact', id: string): Promise<number | undefined> {
  const value = await redis.get(recordLinkKey(prefix, table, id))
  return value === null ? undefined : Number(value)
}

/** A lead Dana creates, synced to a new person by the running sync. */
async function syncedLead (fields: Record<string, unknown>): Promise<{ leadId: string, marketoId: number }> {
  const leadId = sandbox.dataverse.store.insert('leads', { ...fields, _modifiedby_value: dana })
  const marketoId = await eventually(async () => await linkOf('lead', leadId), { timeoutMs: 5_000, what: 'the lead\'s person' })
  await eventually(() => sandbox.marketo.persons.get(marketoId)?.email === fields.emailaddress1 ? true : undefined, { what: 'the person' })
  return { leadId, marketoId }
}

// A bearer from the emulated Azure AD, as any Dataverse client gets one (the emulated Dataverse checks it).
const tokens = createMsalAccessTokenProvider({
  authorityHost: config.azure.authorityHost,
  tenantId: config.azure.tenantId,
  clientId: config.azure.clientId,
  credential: config.azure.credential,
  resourceUrl: config.dynamics.url
})

/** Dana qualifies the lead into a contact, the out-of-the-box way: `QualifyLead` over the Web API. */
async function qualify (leadId: string): Promise<string> {
  const reply = await sendToWebApi(`${sandbox.dataverse.url}/api/data/v9.2/leads(${leadId})/Microsoft.Dynamics.CRM.QualifyLead`, 'POST', {
    headers: { MSCRMCallerID: dana, Authorization: `Bearer ${await tokens.getAccessToken()}` },
    body: { CreateAccount: false, CreateContact: true, CreateOpportunity: false, Status: 3 }
  })
  if (reply.status !== 200) throw new Error(`QualifyLead: ${reply.status}`)
  return (reply.body.value as Array<{ contactid: string }>)[0]!.contactid
}

/** Waits until two lead passes have saved since now. */
async function twoLeadPassesLater (): Promise<void> {
  const checkpoint = { direction: 'dynamics-to-marketo', table: 'lead' } as const
  const { version } = await checkpoints.load(checkpoint)
  await eventually(async () => (await checkpoints.load(checkpoint)).version >= version + 2 ? true : undefined, { timeoutMs: 5_000, what: 'two more lead passes' })
}

/** Waits until two contact passes have saved since now: the second one loaded its checkpoint after this call. */
async function twoContactPassesLater (): Promise<void> {
  const { version } = await checkpoints.load(contactCheckpoint)
  await eventually(async () => (await checkpoints.load(contactCheckpoint)).version >= version + 2 ? true : undefined, { timeoutMs: 5_000, what: 'two more contact passes' })
}

const editInMarketo = async (personId: number, fields: Record<string, unknown>): Promise<void> => { await editPersonInMarketo(config.marketo.baseUrl, personId, fields) }

t.test('a lead qualified into a contact keeps its Marketo person, which now follows the contact; no second person', async (t) => {
  const { leadId, marketoId } = await syncedLead({ firstname: 'Annie', lastname: 'Easley', emailaddress1: 'annie.easley@example.com', jobtitle: 'Programmer' })
  const contactId = await qualify(leadId)
  t.equal(await eventually(async () => await linkOf('contact', contactId), { timeoutMs: 5_000, what: 'the contact\'s link' }), marketoId, 'the contact is linked to the lead\'s person')
  t.equal(await linkOf('lead', leadId), undefined, 'the lead is no longer linked to it')
  t.equal(personsWith('annie.easley@example.com').length, 1, 'one person')
  // The link moves first, then the take-over's write to the person: wait for that write.
  await eventually(() => sandbox.marketo.persons.get(marketoId)?.microsoftIsDeleted === false ? true : undefined, { timeoutMs: 5_000, what: 'the take-over\'s write to the person' })
  t.match(sandbox.marketo.persons.get(marketoId), { firstName: 'Annie', title: 'Programmer', microsoftIsDeleted: false })
  // The lead's own pass carries its Qualified state at about the same time: once the contact has the
  // person, that write must not land over the contact's values.
  await twoLeadPassesLater()
  t.equal(sandbox.marketo.persons.get(marketoId)?.leadStatus, 'Active', 'the contact\'s state, not the qualified lead\'s')
  // The qualified lead's later changes belong to no pair: not matched by email to the person its contact
  // now has, so nothing is parked as a failure for it.
  sandbox.dataverse.store.update('leads', leadId, { description: 'qualified last week', _modifiedby_value: dana })
  await twoLeadPassesLater()
  t.same(await new ParkedChangeStore(redis, prefix).list({ direction: 'dynamics-to-marketo' }), [], 'no failure parked for the qualified lead')

  await t.test('a marketer\'s edit of the person reaches the contact, not the lead', async (t) => {
    await editInMarketo(marketoId, { title: 'Senior Programmer' })
    await eventually(() => sandbox.dataverse.store.get('contacts', contactId)?.jobtitle === 'Senior Programmer' ? true : undefined, { timeoutMs: 5_000, what: 'the title on the contact' })
    t.equal(sandbox.dataverse.store.get('leads', leadId)?.jobtitle, 'Programmer', 'the qualified lead is left as it was')
  })

  await t.test('a Dynamics edit of the contact reaches the same person', async (t) => {
    sandbox.dataverse.store.update('contacts', contactId, { telephone1: '+1 757 555 0100', _modifiedby_value: dana })
    await eventually(() => sandbox.marketo.persons.get(marketoId)?.phone === '+1 757 555 0100' ? true : undefined, { timeoutMs: 5_000, what: 'the phone on the person' })
    t.equal(personsWith('annie.easley@example.com').length, 1, 'still one person')
  })
})

t.test('at the take-over the contact\'s collision rule applies: a field set differently on both sides keeps Dynamics\' value', async (t) => {
  const { leadId, marketoId } = await syncedLead({ lastname: 'Shetterly', emailaddress1: 'margot.shetterly@example.com', jobtitle: 'Writer' })
  // A contact made from the lead with another title (the lookup set on a created contact, as a customised Qualify would).
  const contactId = sandbox.dataverse.store.insert('contacts', { lastname: 'Shetterly', emailaddress1: 'margot.shetterly@example.com', jobtitle: 'Author', _originatingleadid_value: leadId, _modifiedby_value: dana })
  t.equal(await eventually(async () => await linkOf('contact', contactId), { timeoutMs: 5_000, what: 'the contact\'s link' }), marketoId)
  await eventually(() => sandbox.marketo.persons.get(marketoId)?.title === 'Author' ? true : undefined, { timeoutMs: 5_000, what: 'Dynamics\' title on the person' })
  t.equal(sandbox.dataverse.store.get('contacts', contactId)?.jobtitle, 'Author', 'the contact keeps its title: Dynamics won')
  t.equal(personsWith('margot.shetterly@example.com').length, 1)
})

t.test('Qualify with the contact\'s filter No: the contact is not synced and the lead keeps its person', async (t) => {
  const { leadId, marketoId } = await syncedLead({ lastname: 'Mann', emailaddress1: 'miriam.mann@example.com' })
  const contactId = sandbox.dataverse.store.insert('contacts', { lastname: 'Mann', emailaddress1: 'miriam.mann@example.com', new_synctomkto: false, _originatingleadid_value: leadId, _modifiedby_value: dana })
  await twoContactPassesLater()
  t.equal(await linkOf('contact', contactId), undefined, 'the contact is not linked')
  t.equal(await linkOf('lead', leadId), marketoId, 'the lead still is')
  sandbox.dataverse.store.update('leads', leadId, { jobtitle: 'Computer', _modifiedby_value: dana })
  await eventually(() => sandbox.marketo.persons.get(marketoId)?.title === 'Computer' ? true : undefined, { timeoutMs: 5_000, what: 'the lead\'s edit on the person' })
  t.equal(personsWith('miriam.mann@example.com').length, 1)
})

t.test('Qualify of a lead set to No that never synced, into a contact without a filter: a new person for the contact', async (t) => {
  const leadId = sandbox.dataverse.store.insert('leads', { lastname: 'Hoover', emailaddress1: 'dorothy.hoover@example.com', new_synctomkto: false, _modifiedby_value: dana })
  const contactId = await qualify(leadId)
  const marketoId = await eventually(async () => await linkOf('contact', contactId), { timeoutMs: 5_000, what: 'the contact\'s person' })
  t.match(sandbox.marketo.persons.get(marketoId), { lastName: 'Hoover', email: 'dorothy.hoover@example.com' })
  t.equal(await linkOf('lead', leadId), undefined, 'the lead never synced')
  t.equal(personsWith('dorothy.hoover@example.com').length, 1)
})
