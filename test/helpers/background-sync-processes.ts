import { Redis } from 'ioredis'
import { editPersonInMarketo } from './background-sync-harness.ts'
import { loadConfig } from '../../src/config.ts'
import { CheckpointStore, type CheckpointName } from '../../src/background-sync/checkpoints.ts'
import { MARKETO_CHECKPOINT } from '../../src/background-sync/marketo-change-pass.ts'
import { recordLinkKey } from '../../src/queue/redis-keys.ts'
import { SANDBOX_USERS } from '../../sandbox/start-sandbox.ts'
import { eventually } from './flow-step-harness.ts'
import { startProcessHarness, type ProcessHarness } from './process-harness.ts'

/**
 * The background sync as it is deployed, for fault tests: the API and N `src/worker.ts` processes
 * with BACKGROUND_SYNC=on (process-harness.ts), passes a few hundred milliseconds apart, on a real
 * Redis and the sandbox's emulators, which run in the test's process so their state can be read
 * directly. Edits are made as Dana (a person in Dynamics) and as a marketer in Marketo (the
 * emulator's control API, real HTTP); what the service wrote is counted on the emulators.
 */

export const LEAD_CHECKPOINT: CheckpointName = { direction: 'dynamics-to-marketo', table: 'lead' }

const dana = SANDBOX_USERS.dana.systemuserid

export interface BackgroundSyncProcesses {
  readonly h: ProcessHarness
  readonly checkpoints: CheckpointStore
  /** Reads the service's Redis (links, checkpoints): the test's own connection. */
  readonly redis: Redis
  readonly prefix: string
  /** New Dynamics leads edited by Dana, with emails `<label>.<n>@example.com`; their ids in order. */
  seedLeads (count: number, label: string): string[]
  /** The Marketo person a record is linked to, once it is. */
  linkedPerson (recordId: string, options?: { timeoutMs?: number }): Promise<number>
  /** A marketer's edit in Marketo (logged as Change Data Value, not as an API write). */
  editInMarketo (personId: number, fields: Record<string, unknown>): Promise<void>
  /** Marketo persons with an email starting `<label>.`, by lower-cased email. */
  personsByEmail (label: string): Map<string, number>
  /** Updates the service (anyone but Dana) applied to each Dynamics lead since the harness started, by id. */
  serviceLeadWrites (): ReadonlyMap<string, ReadonlyArray<Readonly<Record<string, unknown>>>>
  /** Waits until the Marketo → Dynamics feed has its paging token: edits from then on are read. */
  marketoFeedStarted (): Promise<void>
  /** Waits until `name`'s checkpoint has been saved `passes` more times than now. */
  passesLater (name: CheckpointName, passes: number, options?: { timeoutMs?: number }): Promise<void>
}

export async function startBackgroundSyncProcesses (
  t: { teardown (fn: () => Promise<void> | void): void },
  options: { workers?: number, env?: Readonly<Record<string, string>>, dataverseLatencyMs?: number } = {}
): Promise<BackgroundSyncProcesses> {
  const h = await startProcessHarness(t, {
    workers: options.workers ?? 1,
    ...(options.dataverseLatencyMs === undefined ? {} : { dataverseLatencyMs: options.dataverseLatencyMs }),
    // The Marketo feed read every 500 ms, steadily: the adaptive pace (marketo-poll-pace.ts) would slow it
    // at idle towards its ceiling and what the daily budget pays for; here both allow 500 ms.
    env: { BACKGROUND_SYNC: 'on', SYNC_DYNAMICS_POLL_INTERVAL_MS: '200', SYNC_MARKETO_POLL_INTERVAL_MS: '500', SYNC_MARKETO_POLL_MAX_INTERVAL_MS: '500', MARKETO_DAILY_CALL_BUDGET: '1000000', ...options.env }
  })
  const { sandbox } = h
  const config = loadConfig(sandbox.env)
  const prefix = config.redis.keyPrefix
  const redis = new Redis(config.redis.url, { maxRetriesPerRequest: 1 })
  t.teardown(() => { redis.disconnect() })
  const checkpoints = new CheckpointStore(redis, prefix)

  const writes = new Map<string, Array<Readonly<Record<string, unknown>>>>()
  const unsubscribe = sandbox.dataverse.store.onUpdate((entitySet, id, changes) => {
    if (entitySet !== 'leads' || changes._modifiedby_value === dana) return
    const list = writes.get(id) ?? []
    list.push(changes)
    writes.set(id, list)
  })
  t.teardown(unsubscribe)

  const passesLater = async (name: CheckpointName, passes: number, { timeoutMs = 15_000 } = {}) => {
    const { version } = await checkpoints.load(name)
    await eventually(async () => (await checkpoints.load(name)).version >= version + passes ? true : undefined,
      { timeoutMs, intervalMs: 50, what: `${passes} more ${name.direction} ${name.table} passes` })
  }

  return {
    h,
    checkpoints,
    redis,
    prefix,
    seedLeads (count, label) {
      return Array.from({ length: count }, (_, n) => sandbox.dataverse.store.insert('leads', {
        firstname: `${label}${n}`, lastname: 'Fault', emailaddress1: `${label}.${n}@example.com`, jobtitle: 'Seeded', _modifiedby_value: dana
      }))
    },
    async linkedPerson (recordId, { timeoutMs = 30_000 } = {}) {
      return Number(await eventually(async () => await redis.get(recordLinkKey(prefix, 'lead', recordId)) ?? undefined,
        { timeoutMs, intervalMs: 50, what: `lead ${recordId}'s link` }))
    },
    async editInMarketo (personId, fields) {
      await editPersonInMarketo(sandbox.marketo.url, personId, fields)
    },
    personsByEmail (label) {
      const counts = new Map<string, number>()
      for (const person of sandbox.marketo.persons.list()) {
        const email = String(person.email ?? '').toLowerCase()
        if (email.startsWith(`${label}.`)) counts.set(email, (counts.get(email) ?? 0) + 1)
      }
      return counts
    },
    serviceLeadWrites: () => writes,
    async marketoFeedStarted () {
      await eventually(async () => (await checkpoints.load(MARKETO_CHECKPOINT)).cursor === undefined ? undefined : true,
        { timeoutMs: 30_000, intervalMs: 50, what: 'the Marketo feed\'s first paging token' })
    },
    passesLater
  }
}
