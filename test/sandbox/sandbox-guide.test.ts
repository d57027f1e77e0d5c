import t from 'tap'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { recordLinkKey } from '../../src/queue/redis-keys.ts'
import { backgroundSyncSteps, buildSandboxGuide, DEMO_TITLES, type BackgroundSyncDemo, type SandboxGuideFacts } from '../../sandbox/sandbox-guide.ts'
import { SANDBOX_CREDENTIALS, SANDBOX_USERS } from '../../sandbox/start-sandbox.ts'
import { startBackgroundSyncHarness } from '../helpers/background-sync-harness.ts'
import { eventually } from '../helpers/flow-step-harness.ts'

/**
 * The sandbox guide's background-sync steps, pasted into a shell as a newcomer would: the printed
 * curl commands edit the seeded lead in the emulated Dynamics (a Dataverse token from the emulated
 * Azure AD, a Web API PATCH as a salesperson) and the person shows it; they edit the person in the
 * emulated Marketo and the lead shows it. A worker with BACKGROUND_SYNC=on does the travelling.
 */

const sh = promisify(execFile)

/** The guide's shell commands, continuation lines joined, in the order printed. */
function commandsOf (lines: readonly string[]): string[] {
  const commands: string[] = []
  let current: string | undefined
  for (const line of lines) {
    const text = line.trim()
    if (current === undefined && !/^(curl|TOKEN=)/.test(text)) continue
    current = current === undefined ? text : `${current} ${text}`
    if (current.endsWith('\\')) { current = current.slice(0, -1).trimEnd(); continue }
    commands.push(current)
    current = undefined
  }
  return commands
}

async function run (script: string): Promise<string> {
  return (await sh('sh', ['-c', script])).stdout
}

t.test('with an admin key, the guide names the status page and how a browser logs in to it', async (t) => {
  const facts: SandboxGuideFacts = {
    publicUrl: 'http://127.0.0.1:3000',
    apiKey: 'sandbox-api-key',
    marketoUrl: 'http://127.0.0.1:3001',
    dataverseUrl: 'https://127.0.0.1:3002',
    azureAdUrl: 'https://127.0.0.1:3003',
    redis: { url: 'redis://127.0.0.1:6379', startedHere: true },
    processes: [],
    launcherPid: 1,
    flowStepName: 'Sync Person to Microsoft',
    persons: [],
    dynamics: { hasLead: () => false, hasContact: () => false, leadFirstNameMaxLength: 50 },
    assignTo: { name: SANDBOX_USERS.dana.fullname, systemuserid: SANDBOX_USERS.dana.systemuserid }
  }
  const guide = buildSandboxGuide({ ...facts, adminApiKey: 'the-admin-key' })
  t.match(guide, /Status page\s+http:\/\/127\.0\.0\.1:3000\/admin +\(log in with any user name and the admin key as password\)/)
  t.match(guide, /Admin key\s+the-admin-key/, 'the key to type')
  t.notMatch(buildSandboxGuide(facts), /Status page/, 'no admin key, no admin surface to point at')
})

t.test('with the background sync on, the guide\'s commands carry an edit from Dynamics to Marketo and one back', async (t) => {
  // The pace `npm run sandbox` gives the demo (sandbox/launcher.ts): the feed read every 5 s even at idle.
  const harness = await startBackgroundSyncHarness(t, { SYNC_MARKETO_POLL_INTERVAL_MS: '5000' })
  const { sandbox } = harness
  const lead = sandbox.dataverse.store.list('leads').find((row) => row.emailaddress1 === 'lena.existing@example.com')!
  const person = sandbox.marketo.persons.findByEmail('lena.existing@example.com')!
  const demo: BackgroundSyncDemo = {
    leadId: String(lead.leadid),
    personId: person.id,
    email: 'lena.existing@example.com',
    editor: { name: SANDBOX_USERS.dana.fullname, systemuserid: SANDBOX_USERS.dana.systemuserid },
    token: { url: `${sandbox.azureAd.authorityHost}/${SANDBOX_CREDENTIALS.tenantId}/oauth2/v2.0/token`, clientId: SANDBOX_CREDENTIALS.azureClientId, clientSecret: SANDBOX_CREDENTIALS.azureClientSecret, caPath: sandbox.tls.caPath },
    dynamicsPollIntervalMs: harness.config.sync.dynamicsPollIntervalMs,
    marketoPollIntervalMs: harness.config.sync.marketoPollIntervalMs
  }
  const lines = backgroundSyncSteps({ marketoUrl: sandbox.marketo.url, dataverseUrl: sandbox.dataverse.url }, demo, 5)
  const [token, editLead, readPerson, editPerson, readLeads, ...rest] = commandsOf(lines)
  t.same(rest, [], 'five commands: token, edit the lead, read the person, edit the person, read the leads')
  t.match(token, /^TOKEN=\$\(curl /)
  t.match(editLead, /-X PATCH .*leads\(/)

  harness.startWorker()
  // The first pass links the seeded lead to the seeded person with its email.
  await eventually(async () => await harness.redis.get(recordLinkKey(harness.config.redis.keyPrefix, 'lead', demo.leadId)) ?? undefined, { timeoutMs: 20_000, what: 'the lead linked' })

  t.equal(await run(`${token!}\n${editLead!}`), '', 'the Web API answers the edit with 204 and no body')
  t.equal(sandbox.dataverse.store.get('leads', demo.leadId)?.jobtitle, DEMO_TITLES.inDynamics, 'the lead has the new title')
  t.equal(sandbox.dataverse.store.get('leads', demo.leadId)?._modifiedby_value, SANDBOX_USERS.dana.systemuserid, 'edited as the salesperson, not the service')
  await eventually(async () => (JSON.parse(await run(readPerson!)) as { title?: string }).title === DEMO_TITLES.inDynamics || undefined, { timeoutMs: 20_000, intervalMs: 200, what: 'the person\'s new title' })

  t.match(JSON.parse(await run(editPerson!)), { changed: ['title'] })
  await eventually(async () => {
    const rows = JSON.parse(await run(readLeads!)) as Array<{ leadid: string, jobtitle?: string }>
    return rows.find((row) => row.leadid === demo.leadId)?.jobtitle === DEMO_TITLES.inMarketo || undefined
  }, { timeoutMs: 20_000, intervalMs: 250, what: 'the lead\'s new jobtitle' })
})
