import type { Test } from 'tap'
import { eventually, startFlowStepHarness, type FlowStepHarness } from './flow-step-harness.ts'
import { SANDBOX_USERS } from '../../sandbox/start-sandbox.ts'
import { recordLinkKey } from '../../src/queue/redis-keys.ts'
import type { SyncTable } from '../../src/sync/field-mapping.ts'

/**
 * The flow-step harness with the background sync on and its passes a few hundred milliseconds apart,
 * so a change from Dynamics travels within a test's deadline (Marketo's stay at their default unless `env` says). The emulated Marketo already has every field of the
 * default mapping (the native sync's `microsoft…` custom fields included). `env` adds to or
 * overrides these settings; the worker is started by the test (`harness.startWorker()`).
 */
export async function startBackgroundSyncHarness (t: Pick<Test, 'teardown'>, env: Readonly<Record<string, string>> = {}): Promise<Awaited<ReturnType<typeof startFlowStepHarness>>> {
  return await startFlowStepHarness(t, {
    withWorker: false,
    env: { BACKGROUND_SYNC: 'on', SYNC_DYNAMICS_POLL_INTERVAL_MS: '200', LOG_LEVEL: 'info', ...steadyMarketoPolls(env), ...env }
  })
}

/**
 * A test that sets SYNC_MARKETO_POLL_INTERVAL_MS wants the feed read that often. The pace adapts to
 * the budget (marketo-poll-pace.ts): at idle it would slow towards SYNC_MARKETO_POLL_MAX_INTERVAL_MS
 * and what the daily budget pays for. Unless the test sets them, the slowest pace is the fastest one
 * and the budget is large, so the feed is read at that interval, as the test asked. Tests of the pace
 * itself set both.
 */
function steadyMarketoPolls (env: Readonly<Record<string, string>>): Record<string, string> {
  const interval = env.SYNC_MARKETO_POLL_INTERVAL_MS
  if (interval === undefined) return {}
  return { SYNC_MARKETO_POLL_MAX_INTERVAL_MS: interval, MARKETO_DAILY_CALL_BUDGET: '1000000' }
}

/**
 * A marketer's edit of a person in Marketo's UI, through the emulator's HTTP control (real HTTP): it
 * lands in the lead-change feed as not made through the API, as another user's edit would.
 */
export async function editPersonInMarketo (marketoUrl: string, personId: number, fields: Readonly<Record<string, unknown>>): Promise<void> {
  const response = await fetch(`${marketoUrl}/_emulator/persons/${personId}`, {
    method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ fields })
  })
  if (response.status !== 200) throw new Error(`PATCH person ${personId}: ${response.status}`)
}

/**
 * A record a salesperson (Dana) creates in Dynamics, once the running sync has linked it to a
 * Marketo person and that person carries its values: `personReady` says when (by default, when the
 * person has the record's email).
 */
export async function syncedRecord (
  harness: Pick<FlowStepHarness, 'sandbox' | 'redis' | 'config'>,
  table: SyncTable,
  fields: Readonly<Record<string, unknown>>,
  personReady: (person: Readonly<Record<string, unknown>>) => boolean = (person) => person.email === fields.emailaddress1
): Promise<{ recordId: string, personId: number }> {
  const { sandbox, redis, config } = harness
  const recordId = sandbox.dataverse.store.insert(table === 'lead' ? 'leads' : 'contacts', { ...fields, _modifiedby_value: SANDBOX_USERS.dana.systemuserid })
  const personId = Number(await eventually(async () => await redis.get(recordLinkKey(config.redis.keyPrefix, table, recordId)) ?? undefined, { timeoutMs: 5_000, what: `the ${table}'s link` }))
  await eventually(() => { const person = sandbox.marketo.persons.get(personId); return person !== undefined && personReady(person) ? true : undefined }, { what: `the ${table}'s person` })
  return { recordId, personId }
}
