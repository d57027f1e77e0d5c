import t from 'tap'
import { randomBytes } from 'node:crypto'
import { eventually } from '../helpers/flow-step-harness.ts'
import { acceptedOnly } from '../helpers/process-harness.ts'
import { startBackgroundSyncProcesses } from '../helpers/background-sync-processes.ts'
import { SANDBOX_USERS } from '../../sandbox/start-sandbox.ts'
import { parkedChangeKeys } from '../../src/queue/redis-keys.ts'

/**
 * Issue 13 §7 over a full run: the API and two workers as real processes with BACKGROUND_SYNC=on, at
 * debug level, doing everything the service does with personal data — the flow step syncs persons
 * (one refused by Dynamics), leads edited in Dynamics reach Marketo, persons edited in Marketo reach
 * Dynamics, a Marketo edit Dynamics refuses is parked. Then every line every process wrote is
 * searched for each secret, token and key of the environment, each email and each value the
 * test gave a person or a record. Values carry a random tag, so none can be in a log by chance.
 */

const sync = await startBackgroundSyncProcesses(t, { workers: 2 })
const { h, redis, prefix } = sync
const { dataverse, marketo } = h.sandbox
const dana = SANDBOX_USERS.dana.systemuserid
const tag = randomBytes(4).toString('hex')
const personalData: string[] = []
/** A value no log may hold: remembered for the search at the end. */
const personal = (value: string): string => { personalData.push(value); return value }

const PERSONS = 6
const emails = Array.from({ length: PERSONS }, (_, n) => personal(`secrecy.${tag}.${n}@example.com`))
const personIds = emails.map((email, n) => marketo.persons.create({ email, firstName: personal(`Quillon${tag}${n}`), lastName: personal(`Zephyrine${tag}${n}`) }))
const leadOf = (email: string) => dataverse.store.list('leads').find((lead) => lead.emailaddress1 === email)

t.test('a full run: the flow step, both sync directions and a parked refusal', async (t) => {
  // The flow step: six persons synced, one refused by Dynamics (a lead needs a last name).
  const nameless = marketo.persons.create({ email: personal(`nameless.${tag}@example.com`), firstName: personal(`Namelessa${tag}`) })
  const invocations = await h.runCampaign([...personIds, nameless], 'batch')
  t.equal(acceptedOnly(invocations).length, invocations.length, 'the invocations accepted')
  const report = await h.reconcile(invocations, { timeoutMs: 60_000 })
  t.same(report.problems, [], 'every person accounted for')
  t.same(report.outcomes, { created: PERSONS, existed: 0, failed: 1 }, 'six leads created, the nameless person refused')

  // Dynamics → Marketo: Dana edits three of the leads.
  const edited = [0, 1, 2].map((n) => ({ n, title: personal(`Cartographer${tag}${n}`) }))
  for (const { n, title } of edited) dataverse.store.update('leads', String(leadOf(emails[n]!)?.leadid), { jobtitle: title, _modifiedby_value: dana })
  await eventually(() => edited.every(({ n, title }) => marketo.persons.get(personIds[n]!)?.title === title) || undefined,
    { timeoutMs: 30_000, intervalMs: 100, what: 'the Dynamics edits in Marketo' })

  // Marketo → Dynamics: a marketer edits a person; another gets a title Dynamics refuses (over 100 characters).
  await sync.marketoFeedStarted()
  const navigator = personal(`Navigator${tag}`)
  const tooLong = personal(`Lighthouse keeper ${tag} ${'of the very far north '.repeat(5)}`)
  await sync.editInMarketo(personIds[3]!, { title: navigator })
  await sync.editInMarketo(personIds[4]!, { title: tooLong })
  await eventually(() => leadOf(emails[3]!)?.jobtitle === navigator || undefined, { timeoutMs: 30_000, intervalMs: 100, what: 'the Marketo edit in Dynamics' })
  await eventually(async () => await redis.zcard(parkedChangeKeys(prefix).index) > 0 || undefined, { timeoutMs: 30_000, intervalMs: 100, what: 'the refused edit parked' })
  t.not(leadOf(emails[4]!)?.jobtitle, tooLong, 'the refused title is not in Dynamics')
})

t.test('no process logged a secret, token, key, email or value of the run', async (t) => {
  const text = h.logText()
  // The search means something only if the logs cover the work done, by every process.
  for (const msg of ['flow-step batch synced', 'person not synced', 'Dynamics changes delivered to Marketo', 'Marketo changes delivered to Dynamics', 'Dynamics refused a background-sync update']) {
    t.ok(text.includes(`"msg":"${msg}"`), `the logs have "${msg}"`)
  }
  for (const name of ['api', 'worker-1', 'worker-2']) t.ok(text.includes(`[${name}] `), `the logs of ${name} are searched`)
  t.ok(personalData.length > 20, `${personalData.length} emails and values searched for`)
  t.same(h.leaksInLogs(personalData), [])
})
