import t, { type Test } from 'tap'
import { execFile, spawn } from 'node:child_process'
import { createConnection } from 'node:net'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { freePort } from '../../sandbox/redis-server.ts'
import { SANDBOX_READY_MARK } from '../../sandbox/sandbox-guide.ts'
import { FIRST_SSFS_ACTIVITY_TYPE_ID } from '../../sandbox/marketo/index.ts'
import { eventually } from '../helpers/flow-step-harness.ts'
import { descendantsOf, stillRunning } from '../helpers/process-tree.ts'

/**
 * A newcomer's first five minutes: `npm run sandbox`, read the guide, paste its curl commands,
 * stop it. The API and the worker run as the separate processes `npm start` and
 * `npm run worker` start, configured only by the environment the launcher gives them, so a lead
 * that appears in the emulated Dynamics was created by that worker process through that Redis.
 */

const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url))
const run = promisify(execFile)

interface LaunchedSandbox {
  /** `npm run sandbox`: the process a terminal starts, leader of its process group. */
  readonly npmPid: number
  readonly guide: string
  output (): string
  readonly exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  readonly persons: ReadonlyArray<{ id: number, email: string, outcome: string }>
  readonly redisPort: number
  readonly launcherPid: number
  readonly apiPid: number
  readonly workerPid: number
  /** The guide's curl commands, in the order it prints them. */
  readonly commands: readonly string[]
}

async function launchSandbox (t: Test): Promise<LaunchedSandbox> {
  const env: Record<string, string | undefined> = {
    ...process.env,
    PORT: String(await freePort()),
    // Any free ports: this file may run beside another sandbox (or a developer's) on 4100-4300.
    SANDBOX_MARKETO_PORT: '0',
    SANDBOX_DATAVERSE_PORT: '0',
    SANDBOX_AZURE_AD_PORT: '0'
  }
  // Unset, so the launcher starts (and must stop) a redis-server of its own.
  delete env.REDIS_URL

  // Its own process group, so the teardown can remove every leftover at once.
  const launcher = spawn('npm', ['run', '--silent', 'sandbox'], { cwd: PROJECT_ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  launcher.stdout.on('data', (chunk: Buffer) => { output += chunk.toString('utf8') })
  launcher.stderr.on('data', (chunk: Buffer) => { output += chunk.toString('utf8') })
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) => {
    launcher.once('exit', (code, signal) => resolve({ code, signal }))
  })
  const ready = new RegExp(`^${SANDBOX_READY_MARK.replace('.', '\\.')} .*\\n`, 'm')
  // Settles once: with the whole guide (printed in one write), or with the output of a failed start.
  const guidePrinted = new Promise<string>((resolve, reject) => {
    launcher.stdout.on('data', () => { if (ready.test(output)) resolve(output) })
    void exited.then(({ code }) => reject(new Error(`npm run sandbox exited (${code}) before it was ready:\n${output}`)))
  })

  const servicePids: number[] = []
  t.teardown(() => {
    // Leftovers only: a passing run has already stopped everything.
    if (launcher.exitCode === null && launcher.signalCode === null && launcher.pid !== undefined) killQuietly(-launcher.pid)
    for (const pid of servicePids) killQuietly(pid)
  })

  const guide = await within(guidePrinted, 45_000, 'the sandbox guide', () => output)
  const pidAfter = (pattern: RegExp) => Number(pattern.exec(guide)?.[1])
  const launched: LaunchedSandbox = {
    npmPid: launcher.pid ?? 0,
    guide,
    output: () => output,
    exited,
    persons: [...guide.matchAll(/^ {2}(\d+) {2}(\S+@\S+)\s+(.+)$/gm)].map(([, id, email, outcome]) => ({ id: Number(id), email: email!, outcome: outcome! })),
    redisPort: pidAfter(/Redis\s+redis:\/\/127\.0\.0\.1:(\d+)/),
    launcherPid: pidAfter(/kill -INT (\d+)/),
    apiPid: pidAfter(/API \(npm start\)\s+\S+\s+pid (\d+)/),
    workerPid: pidAfter(/Worker \(npm run worker\)\s+pid (\d+)/),
    commands: curlCommandsIn(guide)
  }
  servicePids.push(launched.apiPid, launched.workerPid)
  return launched
}

async function within<T> (promise: Promise<T>, timeoutMs: number, what: string, context: () => string = () => ''): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${context().slice(-3000)}`)), timeoutMs)
  })
  try {
    return await Promise.race([promise, deadline])
  } finally {
    clearTimeout(timer)
  }
}

function killQuietly (pid: number): void {
  try {
    process.kill(pid, 'SIGKILL')
  } catch {
    // Already gone.
  }
}

function processExists (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

async function portRefusesConnections (port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' })
    socket.once('connect', () => { socket.destroy(); resolve(false) })
    socket.once('error', () => resolve(true))
  })
}

/** `curl …` lines of the guide, continuation lines joined. */
function curlCommandsIn (guide: string): string[] {
  const commands: string[] = []
  let current: string | undefined
  for (const line of guide.split('\n').map((l) => l.trim())) {
    if (current === undefined && !line.startsWith('curl ')) continue
    current = current === undefined ? line : `${current} ${line}`
    if (current.endsWith('\\')) {
      current = current.slice(0, -1).trimEnd()
    } else {
      commands.push(current)
      current = undefined
    }
  }
  return commands
}

/** Runs a command from the guide the way a newcomer pastes it into a shell; answers what it prints. */
async function pasteForText (command: string): Promise<string> {
  const { stdout } = await run('sh', ['-c', command], { timeout: 10_000 })
  return stdout
}

async function paste (command: string): Promise<unknown> {
  return JSON.parse(await pasteForText(command))
}

/** What a Redis client prints when its server has gone (ioredis, BullMQ). */
const REDIS_CONNECTION_ERROR = /ECONNREFUSED|ECONNRESET|Connection is closed|Stream isn't writeable/

t.test('a newcomer follows the guide: the demo campaign creates a lead in Dynamics, then Ctrl-C stops everything quietly', async (t) => {
  const sandbox = await launchSandbox(t)
  const newPerson = sandbox.persons.find((person) => person.outcome.startsWith('new'))
  const [runCampaign] = sandbox.commands
  const listLeads = sandbox.commands.find((command) => command.includes('/_emulator/records/leads'))
  const listContacts = sandbox.commands.find((command) => command.includes('/_emulator/records/contacts'))
  const activitiesOf = (personId: number | undefined) => sandbox.commands.find((command) => command.includes(`/_emulator/persons/${personId}/activities`))
  const status = sandbox.commands.find((command) => command.endsWith('/status'))
  const apiKey = /API key \(x-api-key\)\s+(\S+)/.exec(sandbox.guide)?.[1]

  t.test('the guide names the seeded persons and what will happen to each, the processes, the API key and the commands', async (t) => {
    t.ok(newPerson, 'a new person to sync')
    t.ok(sandbox.persons.some((person) => person.email.startsWith('lena.existing@') && /already a lead/.test(person.outcome)))
    t.ok(sandbox.persons.some((person) => person.email.startsWith('carl.contact@') && /already a contact/.test(person.outcome)))
    t.ok(sandbox.persons.some((person) => person.email.startsWith('too.long@') && /rejects the .*first name/.test(person.outcome)))
    t.ok(sandbox.redisPort > 0, 'a redis-server started for the sandbox')
    t.ok(new Set([sandbox.launcherPid, sandbox.apiPid, sandbox.workerPid]).size === 3, 'launcher, API and worker are three processes')
    t.match(sandbox.guide, /Swagger UI\s+http:\/\/127\.0\.0\.1:\d+\/docs/)
    t.match(sandbox.guide, /SSFS definition\s+http:\/\/127\.0\.0\.1:\d+\/openapi\.json/)
    t.ok(apiKey !== undefined && apiKey.length > 0, 'the API key Swagger UI\'s Authorize needs is printed')
    t.match(runCampaign, /^curl -s -X POST http:\/\/127\.0\.0\.1:\d+\/_emulator\/campaigns\/run /)
    t.ok(listLeads, 'a command that lists the leads')
    t.ok(listContacts, 'a command that lists the contacts')
    for (const person of sandbox.persons) t.ok(activitiesOf(person.id), `a command that shows ${person.email}'s activity log`)
    t.match(status, new RegExp(`-H 'x-api-key: ${apiKey}'`), 'a /status command with the API key')
  })

  await t.test('the API key opens /status', async (t) => {
    t.match(await paste(status!), { info: [String], errors: [] }, 'the flow step answers as Marketo reads it')
  })

  await t.test('the guide prints the generated admin key and the queue dashboard\'s URL; the key opens it, as a browser sends it, and the admin commands', async (t) => {
    const adminKey = /Admin key\s+(\S+)/.exec(sandbox.guide)?.[1]
    const dashboard = /Queue dashboard\s+(http:\/\/127\.0\.0\.1:\d+\/admin\/queues)\b/.exec(sandbox.guide)?.[1]
    t.ok(adminKey !== undefined && adminKey.length >= 16 && adminKey !== apiKey, 'a key of its own')
    t.ok(dashboard, 'the dashboard URL')
    t.equal((await fetch(dashboard!)).status, 401, 'closed without it')
    const page = await fetch(dashboard!, { headers: { authorization: `Basic ${Buffer.from(`ops:${adminKey}`).toString('base64')}` } })
    t.equal(page.status, 200, 'the browser\'s Basic prompt with the key opens it')
    const sync = sandbox.commands.find((command) => command.endsWith('/admin/sync'))
    t.match(await paste(sync!), { directions: [{ direction: 'dynamics-to-marketo' }, { direction: 'marketo-to-dynamics' }] })
  })

  await t.test('pasting the campaign command syncs the new person: a lead owned by Dana, and a successful flow-step activity', async (t) => {
    const answer = await pasteForText(runCampaign!)
    const campaign = JSON.parse(answer) as { invocations: Array<{ status: number }> }
    t.notMatch(answer, /apiCallBackKey|objectData/, 'a summary of each invocation, not its whole payload')
    t.equal(campaign.invocations.length, sandbox.persons.length, 'one trigger invocation per person')
    t.ok(campaign.invocations.every((invocation) => invocation.status === 201), 'the API accepted every invocation')

    const lead = await eventually(async () => {
      const leads = await paste(listLeads!) as Array<Record<string, unknown>>
      return leads.find((row) => String(row.emailaddress1).toLowerCase() === newPerson!.email)
    }, { timeoutMs: 20_000, intervalMs: 200, what: `the lead for ${newPerson!.email}` })
    t.match(lead, { _ownerid_value: /-00000000da7a$/ }, 'owned by the demo campaign\'s Assign To user (Dana)')

    const activity = await eventually(async () => {
      const { activities } = await paste(activitiesOf(newPerson?.id)!) as { activities: Array<{ activityTypeId: number, attributes: Array<{ name: string, value: unknown }> }> }
      return activities.find((a) => a.activityTypeId >= FIRST_SSFS_ACTIVITY_TYPE_ID)
    }, { timeoutMs: 20_000, intervalMs: 200, what: 'the flow-step activity' })
    t.match(Object.fromEntries(activity.attributes.map((a) => [a.name, a.value])), { success: true, outcome: 'created', dynamicsRecordId: lead.leadid })

    t.match(sandbox.output(), /^\[worker\] .*"msg":"flow-step batch synced"/m, 'the worker process did the work')
    t.match(sandbox.output(), /^\[api\] .*"route":"\/submitAsyncAction"/m, 'the API process took the invocations')
  })

  await t.test('every person\'s activity log shows the outcome the guide predicted', async (t) => {
    for (const person of sandbox.persons) {
      const expected = person.outcome.startsWith('new')
        ? { success: true, outcome: 'created' }
        : /^already a/.test(person.outcome) ? { success: true, outcome: 'existed' } : { success: false, outcome: 'failed' }
      const attributes = await eventually(async () => {
        const { activities } = await paste(activitiesOf(person.id)!) as { activities: Array<{ activityTypeId: number, attributes: Array<{ name: string, value: unknown }> }> }
        const step = activities.find((a) => a.activityTypeId >= FIRST_SSFS_ACTIVITY_TYPE_ID)
        return step === undefined ? undefined : Object.fromEntries(step.attributes.map((a) => [a.name, a.value]))
      }, { timeoutMs: 20_000, intervalMs: 200, what: `the flow-step activity of ${person.email}` })
      t.match(attributes, expected, `${person.email}: ${person.outcome}`)
    }
  })

  await t.test('the Dynamics listings are short and readable: the chosen columns, one per line', async (t) => {
    for (const command of [listLeads!, listContacts!]) {
      const text = await pasteForText(command)
      const rows = JSON.parse(text) as Array<Record<string, unknown>>
      t.ok(rows.length > 0, `${command}: rows`)
      const columns = new URL(/'(.*)'/.exec(command)?.[1] ?? '').searchParams.get('$select')?.split(',') ?? []
      t.ok(rows.every((row) => Object.keys(row).every((key) => columns.includes(key))), 'only the selected columns')
      t.ok(text.split('\n').every((line) => line.length <= 120), 'indented, one value per line')
    }
    const contacts = await paste(listContacts!) as Array<Record<string, unknown>>
    t.ok(contacts.some((row) => row.emailaddress1 === 'carl.contact@example.com'), 'the seeded contact is listed')
  })

  await t.test('Ctrl-C in the terminal (SIGINT to the whole process group): everything stops in order, quietly, and npm run sandbox exits 0', async (t) => {
    const tree = descendantsOf(sandbox.npmPid)
    t.ok(tree.some((process) => process.command.startsWith('redis-server')), 'Redis is part of the sandbox\'s process tree')
    const outputBefore = sandbox.output().length
    process.kill(-sandbox.npmPid, 'SIGINT')
    // Generous for a loaded machine; a quiet stop takes about a second.
    const exit = await within(sandbox.exited, 20_000, 'npm run sandbox to exit', sandbox.output)
    t.same(exit, { code: 0, signal: null }, 'exit status')
    const shutdownOutput = sandbox.output().slice(outputBefore)
    t.notMatch(shutdownOutput, REDIS_CONNECTION_ERROR, 'no Redis connection error: Redis stops after the services')
    t.notMatch(shutdownOutput, /killed by SIGKILL|shutdown deadline passed|"level":50/, 'no service forced or failing to stop')
    t.match(shutdownOutput, /^\[sandbox\] stopped$/m)
    const left = await eventually(() => { const running = stillRunning(tree); return running.length === 0 ? running : undefined },
      { timeoutMs: 10_000, intervalMs: 100, what: 'every process of the sandbox to be gone' }).catch(() => stillRunning(tree))
    t.same(left.map((process) => process.command), [], 'no process of the sandbox is left running')
    t.ok(await portRefusesConnections(sandbox.redisPort), 'the sandbox\'s redis-server is gone')
  })
})

t.test('the worker dies: the launcher says so, stops everything and exits non-zero', async (t) => {
  const sandbox = await launchSandbox(t)
  process.kill(sandbox.workerPid, 'SIGKILL')
  const exit = await within(sandbox.exited, 20_000, 'npm run sandbox to exit', sandbox.output)
  t.not(exit.code, 0, 'a failure exit status')
  t.match(sandbox.output(), /\[sandbox\] the worker process was killed by SIGKILL unexpectedly/)
  t.notOk(processExists(sandbox.apiPid), 'the API process is gone')
  t.ok(await portRefusesConnections(sandbox.redisPort), 'the sandbox\'s redis-server is gone')
})
