import { hkdfSync } from 'node:crypto'
import type { Logger } from 'pino'
import type { Config } from '../config.ts'
import { readSyncFilterTables, readTableOptionSets, readTableStateStatus } from '../dynamics/attribute-metadata.ts'
import type { DataverseClient } from '../dynamics/dataverse-client.ts'
import { RecordLinkStore } from '../links/record-link-store.ts'
import { SyncFailureActivityLog, type CustomActivityWriter } from '../marketo/sync-failure-activity.ts'
import type { RedisClient } from '../queue/connections.ts'
import { fieldFingerprinter, type FieldFingerprinter } from '../sync/field-fingerprint.ts'
import { readFieldMappingFile } from '../sync/field-mapping-file.ts'
import { SYNC_TABLES, type SyncTable } from '../sync/field-mapping.ts'
import type { OptionSets } from '../sync/option-labels.ts'
import type { StateStatusOptions } from '../sync/state-status.ts'
import type { DynamicsParkedChangeRetryDeps } from './dynamics-parked-change-retry.ts'
import type { MarketoPersonWriter } from './dynamics-to-marketo-delivery.ts'
import type { ParkedChangeRetryDeps } from './parked-change-retry.ts'
import { PairStateStore } from './pair-state-store.ts'
import { ParkedChangeStore } from './parked-changes.ts'

/**
 * The key of the pair-state fingerprints (field-fingerprint.ts), derived from the key-hash secret
 * under its own label: fingerprints and key digests never share one. The worker's passes and a
 * retry run from the API must use the same, or a retry would see every field as changed.
 */
export function fieldFingerprintKey (config: Pick<Config, 'redis'>): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', config.redis.keyHashSecret, 'marketo-dynamics-sync', 'field-fingerprint', 32))
}

export interface ParkedChangeRetryDepsSources {
  readonly config: Config
  readonly logger: Logger
  readonly redis: RedisClient
  readonly dataverse: Pick<DataverseClient, 'retrieveMultiple' | 'updateMultiple' | 'retrieveQueryPage' | 'whoAmI'>
  readonly marketo: ParkedChangeRetryDeps['marketo'] & MarketoPersonWriter & CustomActivityWriter
}

/** Each direction's retry deps, built on demand: a retry of one direction never waits on the other's metadata. */
export interface ParkedChangeRetryDepsOfBothDirections {
  /** Marketo → Dynamics entries (parked-change-retry.ts). */
  readonly marketoToDynamics: () => Promise<ParkedChangeRetryDeps>
  /** Dynamics → Marketo entries (dynamics-parked-change-retry.ts). */
  readonly dynamicsToMarketo: () => Promise<DynamicsParkedChangeRetryDeps>
  /** What both use of Dataverse's answers, read once per process (explain and resync ask them too). */
  readonly syncFilterTables: () => Promise<ReadonlySet<SyncTable>>
  readonly serviceUserId: () => Promise<string>
}

/**
 * What a retry of parked changes needs, either direction, built as the background sync's worker
 * builds its passes' (background-sync-worker-feature.ts) so any process can run one: the admin API
 * does. The field mapping is read from SYNC_FIELD_MAPPING_FILE (the worker checked it against both
 * schemas at its start). What Dataverse says about itself is I/O, asked on the first retry that
 * needs it and kept for the process, as the worker keeps it from its start: the option sets and how
 * states and statuses pair (Marketo → Dynamics; without them a label or a lone state would be
 * written as Marketo holds it, and refused), which tables have the sync filter and the service's
 * own user (Dynamics → Marketo: a change read selecting a missing column is refused; the merge
 * tells our own writes by their `modifiedby`). Each is asked again after a failure, and until then
 * a retry that needs it fails rather than decide differently from a pass.
 */
export function parkedChangeRetryDeps (sources: ParkedChangeRetryDepsSources): ParkedChangeRetryDepsOfBothDirections {
  const { config, logger, redis, dataverse, marketo } = sources
  const prefix = config.redis.keyPrefix
  const fingerprintKey = fieldFingerprintKey(config)
  // One per process: the activity type is looked up once, on the first refusal.
  const failureLog = new SyncFailureActivityLog(marketo)
  const parked = new ParkedChangeStore(redis, prefix)
  const links = new RecordLinkStore(redis, prefix)
  const pairs = new PairStateStore(redis, prefix)
  const fingerprinter = (pairId: string): FieldFingerprinter => fieldFingerprinter(fingerprintKey, pairId)

  const optionSets = readOnce(async () => Object.fromEntries(await Promise.all(SYNC_TABLES.map(async (table) =>
    [table, await readTableOptionSets(dataverse, table)] as const))) as Partial<Record<SyncTable, OptionSets>>)
  const stateStatus = readOnce(async () => {
    const options: Partial<Record<SyncTable, StateStatusOptions>> = {}
    for (const [table, pair] of await Promise.all(SYNC_TABLES.map(async (table) => [table, await readTableStateStatus(dataverse, table)] as const))) {
      if (pair !== undefined) options[table] = pair
    }
    return options
  })
  const syncFilterTables = readOnce(async (): Promise<ReadonlySet<SyncTable>> => new Set(await readSyncFilterTables(dataverse)))
  const serviceUserId = readOnce(async () => await dataverse.whoAmI())

  return {
    syncFilterTables,
    serviceUserId,
    async marketoToDynamics () {
      const mapping = readFieldMappingFile(config.sync.fieldMappingFile)
      const [sets, pairing] = await Promise.all([optionSets(), stateStatus()])
      return { dataverse, marketo, parked, links, pairs, mapping, fingerprinter, optionSets: sets, stateStatus: pairing, failureLog, logger }
    },
    async dynamicsToMarketo () {
      const mapping = readFieldMappingFile(config.sync.fieldMappingFile)
      const [tables, userId] = await Promise.all([syncFilterTables(), serviceUserId()])
      return { dataverse, marketo, parked, links, pairs, mapping, fingerprinter, serviceUserId: userId, syncFilterTables: tables, logger }
    }
  }
}

/** A value read once per process; a failed read is not kept, so the next call asks again. */
function readOnce<T> (read: () => Promise<T>): () => Promise<T> {
  let value: Promise<T> | undefined
  return async () => {
    value ??= read()
    return await value.catch((error: unknown) => { value = undefined; throw error })
  }
}
