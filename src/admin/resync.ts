import type { Logger } from 'pino'
import type { Config } from '../config.ts'
import type { DataverseClient } from '../dynamics/dataverse-client.ts'
import { RecordLinkStore } from '../links/record-link-store.ts'
import type { RedisClient } from '../queue/connections.ts'
import { readFieldMappingFile } from '../sync/field-mapping-file.ts'
import { deliverDynamicsPage, type DynamicsToMarketoDeliveryDeps, type MarketoPersonWriter, type PersonLinker } from '../background-sync/dynamics-to-marketo-delivery.ts'
import { retryResultOf, type DynamicsParkedChangeRetryResult } from '../background-sync/dynamics-parked-change-retry.ts'
import { reportRefusedWrites, writePersonChanges } from '../background-sync/marketo-change-pass.ts'
import { currentPersonValues, type ParkedChangeRetryDeps } from '../background-sync/parked-change-retry.ts'
import type { ParkedChangeRetryDepsOfBothDirections } from '../background-sync/parked-change-retry-deps.ts'
import { PairStateStore } from '../background-sync/pair-state-store.ts'
import { ParkedChangeStore } from '../background-sync/parked-changes.ts'
import { SyncPauses } from '../background-sync/sync-pauses.ts'
import { AdminNotFoundError } from '../errors.ts'
import { writesToDynamics, type SyncTable } from '../sync/field-mapping.ts'
import { findPerson, marketoIdOf, readCurrentRecord, recordIdOf, type AdminPairDeps } from './explain.ts'

/**
 * A forced resync of one pair (issue 13 §4), which Marketo's native sync cannot do: the pair's
 * last-synced state is dropped, so both sides are compared as a new pair by the documented rules —
 * a field empty on one side is filled from the other, a field set on both is a collision the record
 * type's side wins (Marketo on leads, Dynamics on contacts) — and both directions run at once:
 *
 * 1. Dynamics → Marketo: the record is read from Dataverse as a change read would, and delivered as
 *    a one-row page through the pass's own `deliverDynamicsPage` (as dynamics-parked-change-retry.ts
 *    does): the sync filter, the duplicate rule and the merge decide. It leaves to step 2 the fields
 *    whose Marketo value wins.
 * 2. Marketo → Dynamics: the person's current values of every field the mapping writes to Dynamics
 *    are merged and written through the pass's own `writePersonChanges` (as parked-change-retry.ts
 *    does), refusals parked and logged to the person's activity log as a pass does.
 *
 * Not under the feeds' leases: a resync may run beside a pass, which writes absolute values too.
 */

export interface ResyncDeps extends AdminPairDeps {
  /** The Marketo → Dynamics write path's deps, from the shared builder (parked-change-retry-deps.ts). */
  readonly retryDeps: () => Promise<ParkedChangeRetryDeps>
  readonly marketo: DynamicsToMarketoDeliveryDeps['marketo']
  readonly pairs: PairStateStore
  readonly links: PersonLinker
  readonly parked: Pick<ParkedChangeStore, 'get' | 'park' | 'settle'>
  /** The service's Dataverse user (WhoAmI): rows it last modified are its own writes. */
  readonly serviceUserId: () => Promise<string | undefined>
  readonly logger: Logger
  /** A paused direction (POST /admin/sync/:direction/pause) is not written by a resync either. */
  readonly pauses: Pick<SyncPauses, 'isPaused'>
}

export type ResyncToDynamicsResult = 'written' | 'unchanged' | 'refused' | 'person-missing' | 'not-linked' | 'paused'

export interface ResyncAnswer {
  readonly result: 'resynced' | 'unlinked'
  readonly marketoId: number | null
  readonly record: { readonly table: SyncTable, readonly id: string } | null
  /** What the Dynamics → Marketo delivery did; absent for an unlinked person. */
  readonly toMarketo?: Exclude<DynamicsParkedChangeRetryResult, 'record-missing'> | 'paused'
  readonly toDynamics?: ResyncToDynamicsResult
  readonly notes: readonly string[]
}

const UNLINKED_PERSON = 'The person is not linked to a Dynamics record, so there is nothing to resync. The background sync never creates records in Dynamics: run the "Sync Person to Microsoft" flow step for the person to create its lead (or find its record) and link it.'

/** `log`: the admin request's logger, so the resync's lines carry its `reqId` (issue 13 §7). */
export async function resyncPerson (deps: ResyncDeps, key: { marketoId: number | string } | { email: string }, log: Logger = deps.logger): Promise<ResyncAnswer> {
  const person = await findPerson(deps, 'marketoId' in key ? { marketoId: marketoIdOf(key.marketoId) } : key)
  const link = (await deps.links.getMany([person.marketoId])).get(person.marketoId)
  if (link === undefined) {
    const notes = [UNLINKED_PERSON]
    if (person.sameEmailPersonIds.length > 0) notes.push('Several Marketo persons have this email: merge them in Marketo first.')
    return { result: 'unlinked', marketoId: person.marketoId, record: null, notes }
  }
  return await resyncPair({ ...deps, logger: log }, link.type.toLowerCase() as SyncTable, link.id.toLowerCase())
}

export async function resyncRecord (deps: ResyncDeps, table: SyncTable, id: string, log: Logger = deps.logger): Promise<ResyncAnswer> {
  return await resyncPair({ ...deps, logger: log }, table, recordIdOf(id))
}

async function resyncPair (deps: ResyncDeps, table: SyncTable, recordId: string): Promise<ResyncAnswer> {
  const retryDeps = { ...await deps.retryDeps(), logger: deps.logger }
  const mapping = retryDeps.mapping
  const syncFilter = (await deps.syncFilterTables()).has(table)
  const row = await readCurrentRecord(deps, mapping, table, recordId, syncFilter)
  if (row === undefined) throw new AdminNotFoundError('RECORD_NOT_FOUND', `Dynamics has no ${table} with this id`)

  const [toMarketoPaused, toDynamicsPaused] = await Promise.all([deps.pauses.isPaused('dynamics-to-marketo'), deps.pauses.isPaused('marketo-to-dynamics')])
  const notes: string[] = []
  let toMarketo: ResyncAnswer['toMarketo'] = 'paused'
  if (toMarketoPaused) {
    notes.push('The Dynamics → Marketo direction is paused: nothing was written to Marketo (POST /admin/sync/dynamics-to-marketo/resume, then resync again).')
  } else {
    // From scratch: without a last-synced state every field is compared as in a new pair. Kept
    // when the other direction is paused: its passes will merge against it once resumed.
    if (!toDynamicsPaused) await deps.pairs.forget(table, [recordId])
    const delivered = await deliverDynamicsPage(
      { kind: 'page', upserted: [row], deletedIds: [], cursor: '', caughtUp: true },
      { table, mapping, marketo: deps.marketo, pairs: deps.pairs, links: deps.links, fingerprinter: retryDeps.fingerprinter, serviceUserId: await deps.serviceUserId(), parked: deps.parked, logger: deps.logger }
    )
    toMarketo = retryResultOf(delivered)
  }

  // The delivery may have linked the record (or created its person): the link is read after it.
  const marketoId = (await deps.pairs.linkedPersons(table, [recordId])).get(recordId)
  let toDynamics: ResyncToDynamicsResult = 'not-linked'
  if (toDynamicsPaused) {
    toDynamics = 'paused'
    notes.push('The Marketo → Dynamics direction is paused: nothing was written to Dynamics (POST /admin/sync/marketo-to-dynamics/resume, then resync again).')
  } else if (marketoId === undefined) {
    notes.push('The record is not linked to a Marketo person: it has no email, or several persons share it (see its parked failure), so nothing was written to Dynamics.')
  } else {
    toDynamics = await writePersonToDynamics(deps, retryDeps, table, recordId, marketoId)
  }
  if (toMarketo === 'filtered') notes.push('The record\'s sync filter new_synctomkto is No: nothing was written to Marketo; Marketo\'s values still go to Dynamics.')
  if (toMarketo === 'refused' || toDynamics === 'refused') notes.push('A side refused a write: it is parked with its code (GET /admin/explain/record/... shows it; Dynamics\' message is in the person\'s Marketo activity log).')
  deps.logger.info({ table, recordId, marketoId, toMarketo, toDynamics }, 'pair resynced')
  return { result: 'resynced', marketoId: marketoId ?? null, record: { table, id: recordId }, toMarketo, toDynamics, notes }
}

/** The person's current values of every field written to Dynamics, as if just changed by a marketer, through the pass's merge and write. */
async function writePersonToDynamics (deps: ResyncDeps, retryDeps: ParkedChangeRetryDeps, table: SyncTable, recordId: string, marketoId: number): Promise<ResyncToDynamicsResult> {
  const fields = retryDeps.mapping.fields.filter((entry) => entry[table] !== null && writesToDynamics(entry.direction)).map((entry) => entry.marketoField)
  const [lead] = await deps.marketo.getLeadsByIds([marketoId], fields)
  if (lead === undefined) return 'person-missing'
  const outcome = await writePersonChanges(retryDeps, table, [{ recordId, person: currentPersonValues(marketoId, fields, lead, new Date()) }])
  // Parked and written to the person's activity log as a pass does; a later pass or retry settles it.
  await reportRefusedWrites(retryDeps, outcome.refused, new Date())
  if (outcome.refused.length > 0) return 'refused'
  if (outcome.missingRecordIds.length > 0) return 'unchanged'
  return outcome.written.length > 0 ? 'written' : 'unchanged'
}

/** The clients explain and resync use beyond a parked retry's: reads by query and email, Sync Leads, WhoAmI. */
export interface AdminPairSources {
  readonly dataverse: Pick<DataverseClient, 'retrieveQueryPage' | 'retrieveMultiple' | 'whoAmI'>
  readonly marketo: MarketoPersonWriter
}

/**
 * Explain's and resync's deps, built once per API process over the shared retry builder
 * (parked-change-retry-deps.ts) for the Marketo → Dynamics write path. What the worker learns at
 * start-up (the tables with the sync filter, the service's Dataverse user) is read here on first
 * use and kept, asked again after a failure, as the builder does for option sets.
 */
export function adminPairDeps (sources: AdminPairSources & { readonly config: Config, readonly logger: Logger, readonly redis: RedisClient, readonly retryDeps: ParkedChangeRetryDepsOfBothDirections }): ResyncDeps {
  const { config, logger, redis, dataverse, marketo, retryDeps } = sources
  const prefix = config.redis.keyPrefix
  return {
    mapping: () => readFieldMappingFile(config.sync.fieldMappingFile),
    links: new RecordLinkStore(redis, prefix),
    pairs: new PairStateStore(redis, prefix),
    parked: new ParkedChangeStore(redis, prefix),
    marketo,
    dataverse,
    retryDeps: retryDeps.marketoToDynamics,
    logger,
    pauses: new SyncPauses(redis, prefix),
    // Read once per process by the shared builder, for retries and for these alike.
    syncFilterTables: retryDeps.syncFilterTables,
    async serviceUserId () {
      // Only labels the record's own writes as ours; a resync goes on without it, as a pass does.
      return await retryDeps.serviceUserId().catch((error: unknown) => { logger.warn({ err: error }, 'WhoAmI failed'); return undefined })
    }
  }
}
