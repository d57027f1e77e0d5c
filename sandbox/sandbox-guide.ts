/**
 * The text `npm run sandbox` prints once everything answers: where things are, who the seeded
 * Marketo persons are and what the flow step will do for each, and copy-pasteable curl commands
 * for the emulators' `/_emulator/*` control routes. Pure: the launcher gathers the facts.
 */

export interface SeededPerson {
  readonly id: number
  readonly email: string
  readonly firstName: string
}

/** What the emulated Dynamics already holds, enough to predict the flow step's outcome. */
export interface DynamicsSeedFacts {
  hasLead (email: string): boolean
  hasContact (email: string): boolean
  /** Dataverse `lead.firstname` is a 50-character string column. */
  readonly leadFirstNameMaxLength: number
}

export interface SandboxGuideFacts {
  readonly publicUrl: string
  /**
   * The sandbox's well-known SSFS API key (header `x-api-key`): Swagger UI's Authorize, `/status`
   * and `/getPicklist` need it. It opens nothing but this sandbox, so printing it is safe.
   */
  readonly apiKey: string
  /**
   * The admin key the launcher generated for this sandbox (ADMIN_API_KEY): the admin API and the
   * queue dashboard at /admin/queues need it (a browser asks for it: any user name, the key as password).
   */
  readonly adminApiKey?: string
  readonly marketoUrl: string
  readonly dataverseUrl: string
  readonly azureAdUrl: string
  readonly redis: { readonly url: string, readonly startedHere: boolean }
  /** The service's own processes, e.g. `{ label: 'API', command: 'npm start', url, pid }`. */
  readonly processes: ReadonlyArray<{ readonly label: string, readonly command: string, readonly url?: string, readonly pid: number | undefined }>
  /** The launcher's own process, the one to signal. */
  readonly launcherPid: number
  /** The flow step's name as installed in the emulated Marketo. */
  readonly flowStepName: string
  readonly persons: readonly SeededPerson[]
  readonly dynamics: DynamicsSeedFacts
  /** The Dynamics user the demo campaign assigns new leads to (the "Assign To" flow-step field). */
  readonly assignTo: { readonly name: string, readonly systemuserid: string }
  /** With BACKGROUND_SYNC=on: the pair the guide edits each way. */
  readonly backgroundSync?: BackgroundSyncDemo
}

/**
 * A seeded Dynamics lead whose email a seeded Marketo person has: the sync links them on its first
 * pass, and the guide edits one side and shows the other.
 */
export interface BackgroundSyncDemo {
  readonly leadId: string
  readonly personId: number
  readonly email: string
  /** Who edits the lead: a salesperson, not the service's application user (whose writes are echoes). */
  readonly editor: { readonly name: string, readonly systemuserid: string }
  /** Client credentials for a Dataverse token from the Azure AD emulator (sandbox-only secrets). */
  readonly token: { readonly url: string, readonly clientId: string, readonly clientSecret: string, readonly caPath: string }
  readonly dynamicsPollIntervalMs: number
  readonly marketoPollIntervalMs: number
}

/** The titles the guide's edits write, so its test can look for them. */
export const DEMO_TITLES = { inDynamics: 'Head of Sales', inMarketo: 'VP Marketing' } as const

/**
 * The background sync's demo: edit the lead in the emulated Dynamics through its Web API, as the
 * salesperson (`MSCRMCallerID` impersonation, dataverse-web-api-and-msal.md), then read the person
 * in the emulated Marketo; edit the person as a marketer does (`PATCH /_emulator/persons/:id`, a
 * Data Value Change not made through the API), then read the lead.
 */
export function backgroundSyncSteps (facts: Pick<SandboxGuideFacts, 'marketoUrl' | 'dataverseUrl'>, demo: BackgroundSyncDemo, first: number): string[] {
  const seconds = (ms: number) => Math.round(ms / 100) / 10
  const tokenRequest = [
    `  TOKEN=$(curl -s --cacert ${demo.token.caPath} ${demo.token.url} \\`,
    `    -d grant_type=client_credentials -d client_id=${demo.token.clientId} -d client_secret=${demo.token.clientSecret} \\`,
    `    -d 'scope=${facts.dataverseUrl}/.default' | sed -E 's/.*"access_token":"([^"]+)".*/\\1/')`
  ]
  return [
    `${first}. The background sync (BACKGROUND_SYNC=on) keeps ${demo.email}'s lead and person in step.`,
    `   Edit the lead's job title in Dynamics as ${demo.editor.name} (a Dataverse token, then a Web API PATCH):`,
    '',
    ...tokenRequest,
    `  curl -s -X PATCH '${facts.dataverseUrl}/api/data/v9.2/leads(${demo.leadId})' \\`,
    `    -H "Authorization: Bearer $TOKEN" -H 'MSCRMCallerID: ${demo.editor.systemuserid}' \\`,
    `    -H 'content-type: application/json' -d '{"jobtitle":"${DEMO_TITLES.inDynamics}"}'`,
    '',
    `   Within a few seconds (Dynamics is read every ${seconds(demo.dynamicsPollIntervalMs)} s) the Marketo person's title is "${DEMO_TITLES.inDynamics}":`,
    '',
    `  curl -s ${facts.marketoUrl}/_emulator/persons/${demo.personId}`,
    '',
    `${first + 1}. Edit the person's title in Marketo as a marketer would:`,
    '',
    `  curl -s -X PATCH ${facts.marketoUrl}/_emulator/persons/${demo.personId} \\`,
    `    -H 'content-type: application/json' -d '{"title":"${DEMO_TITLES.inMarketo}"}'`,
    '',
    `   Within a few seconds (Marketo's changes are read every ${seconds(demo.marketoPollIntervalMs)} s) the lead's jobtitle is "${DEMO_TITLES.inMarketo}":`,
    '',
    `  curl -s '${facts.dataverseUrl}/_emulator/records/leads?$select=leadid,emailaddress1,jobtitle'`,
    ''
  ]
}

/** How the guide's last line starts; the integration test waits for it. */
export const SANDBOX_READY_MARK = 'Sandbox ready.'

export type PredictedOutcome = 'lead created' | 'lead exists' | 'contact exists' | 'rejected by Dynamics'

export function predictOutcome (person: SeededPerson, dynamics: DynamicsSeedFacts): PredictedOutcome {
  if (dynamics.hasLead(person.email)) return 'lead exists'
  if (dynamics.hasContact(person.email)) return 'contact exists'
  if (person.firstName.length > dynamics.leadFirstNameMaxLength) return 'rejected by Dynamics'
  return 'lead created'
}

function describeOutcome (person: SeededPerson, dynamics: DynamicsSeedFacts): string {
  switch (predictOutcome(person, dynamics)) {
    case 'lead exists': return 'already a lead in Dynamics → nothing is created (outcome "existed")'
    case 'contact exists': return 'already a contact in Dynamics → no lead is created (outcome "existed")'
    case 'rejected by Dynamics':
      return `Dynamics rejects the ${person.firstName.length}-character first name (max ${dynamics.leadFirstNameMaxLength}) → the step fails with Dynamics' message`
    case 'lead created': return 'new → a lead is created in Dynamics (outcome "created")'
  }
}

/** Columns the guide's Dynamics listings show: enough to see who was created and for whom, on one screen. */
const LEAD_COLUMNS = ['leadid', 'firstname', 'lastname', 'emailaddress1', 'companyname', '_ownerid_value']
const CONTACT_COLUMNS = ['contactid', 'firstname', 'lastname', 'emailaddress1']

export function buildSandboxGuide (facts: SandboxGuideFacts): string {
  const runBody = JSON.stringify({
    personIds: facts.persons.map((person) => person.id),
    kind: 'trigger',
    flowStepContext: { syncAs: 'Lead', assignTo: facts.assignTo.systemuserid }
  })
  const emailWidth = Math.max(...facts.persons.map((person) => person.email.length))
  // Single quotes: the shell must leave OData's `$select` alone.
  const recordsOf = (entitySet: string, columns: readonly string[]) =>
    `  curl -s '${facts.dataverseUrl}/_emulator/records/${entitySet}?$select=${columns.join(',')}'`
  const activityCommands = facts.persons.map((person) => `  curl -s ${facts.marketoUrl}/_emulator/persons/${person.id}/activities`)
  const activityWidth = Math.max(...activityCommands.map((command) => command.length))

  const lines = [
    '',
    'marketo-dynamics-sync sandbox',
    '',
    ...table([
      ...facts.processes.map((p): TableRow => [`${p.label} (${p.command})`, [p.url, p.pid === undefined ? undefined : `pid ${p.pid}`].filter((part) => part !== undefined).join('  ')]),
      ['API key (x-api-key)', `${facts.apiKey}  (Swagger UI: Authorize; /status, /getPicklist and /submitAsyncAction need it)`],
      ['Swagger UI', `${facts.publicUrl}/docs`],
      ...(facts.adminApiKey === undefined
        ? []
        : [
            ['Admin key', `${facts.adminApiKey}  (Authorization: Bearer <key>; a browser asks: any user name, the key as password)`] as const,
            ['Status page', `${facts.publicUrl}/admin  (log in with any user name and the admin key as password)`] as const,
            ['Queue dashboard', `${facts.publicUrl}/admin/queues`] as const
          ]),
      ['SSFS definition', `${facts.publicUrl}/openapi.json  (installed in Marketo as "${facts.flowStepName}")`],
      ['Marketo emulator', facts.marketoUrl],
      ['Dynamics (Dataverse) emulator', `${facts.dataverseUrl}/api/data/v9.2/`],
      ['Azure AD emulator', facts.azureAdUrl],
      ['Redis', `${facts.redis.url}${facts.redis.startedHere ? '  (started for this sandbox)' : ''}`]
    ]),
    '',
    'Marketo persons:',
    ...facts.persons.map((person) => `  ${person.id}  ${person.email.padEnd(emailWidth)}  ${describeOutcome(person, facts.dynamics)}`),
    '',
    `1. Run a trigger campaign with the "${facts.flowStepName}" step for all of them, Assign To = ${facts.assignTo.name}:`,
    '',
    `  curl -s -X POST ${facts.marketoUrl}/_emulator/campaigns/run \\`,
    "    -H 'content-type: application/json' \\",
    `    -d '${runBody}'`,
    '',
    '2. A moment later (the worker does the work), see the leads and the contacts in the emulated Dynamics:',
    '',
    recordsOf('leads', LEAD_COLUMNS),
    recordsOf('contacts', CONTACT_COLUMNS),
    '',
    '3. See each person\'s activity log in Marketo (the step\'s activity carries success, outcome and any reason):',
    '',
    ...facts.persons.map((person, index) => `${(activityCommands[index] ?? '').padEnd(activityWidth)}  # ${person.email}`),
    '',
    '4. The flow step\'s own endpoints, as Marketo calls them, with the API key:',
    '',
    `  curl -s -H 'x-api-key: ${facts.apiKey}' ${facts.publicUrl}/status`,
    '',
    ...(facts.adminApiKey === undefined
      ? []
      : [
          'The admin API (parked failures, each sync direction, pause and resume; README, "Admin API"), with the admin key:',
          '',
          `  curl -s -H 'authorization: Bearer ${facts.adminApiKey}' ${facts.publicUrl}/admin/sync`,
          `  curl -s -H 'authorization: Bearer ${facts.adminApiKey}' ${facts.publicUrl}/admin/parked`,
          ''
        ]),
    ...(facts.backgroundSync === undefined ? [] : backgroundSyncSteps(facts, facts.backgroundSync, 5)),
    `More emulator controls (persons, callbacks, fault injection): README, "The sandbox".`,
    ''
  ]
  // The pid is for a sandbox started in the background or from a script, where no terminal
  // delivers Ctrl-C (a SIGTERM to npm works as well: the script execs the launcher).
  lines.push(`${SANDBOX_READY_MARK} Ctrl-C (or kill -INT ${facts.launcherPid}) stops the API, the worker, the emulators and Redis.`, '')
  return lines.join('\n')
}

type TableRow = readonly [label: string, value: string]

function table (rows: readonly TableRow[]): string[] {
  const width = Math.max(...rows.map(([label]) => label.length))
  return rows.map(([label, value]) => `  ${label.padEnd(width)}  ${value}`)
}
